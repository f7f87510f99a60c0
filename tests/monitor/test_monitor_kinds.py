"""The monitor's pages, /api/status, /history and /metrics for every model kind, and each
model's own pages, read from a local REST API stand-in (testkit.airflow_api) that serves a
multiclass model with text labels, a regression and a binary classifier.

Hermetic: no Airflow process; the real monitor app and REST client over HTTP."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest

from tests.monitor.conftest import KIND_DAGS

SVG = "{http://www.w3.org/2000/svg}"


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def chart(html: str, name: str) -> ET.Element:
    svg = re.search(rf'<svg class="chart" data-chart="{name}".*?</svg>', html, re.S)
    assert svg, name
    return ET.fromstring(svg.group(0))


def round_ticks(ticks: list[float]) -> bool:
    """Evenly spaced by 1, 2, 2.5 or 5 times a power of ten, each a multiple of the step."""
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    return (
        len(ticks) >= 2
        and any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))
        and all(math.isclose(b - a, step) for a, b in itertools.pairwise(ticks))
        and all(math.isclose(t / step, round(t / step), abs_tol=1e-9) for t in ticks)
    )


def test_multiclass_run_shows_macro_scores_per_class_table_and_grid(make_kinds_app) -> None:
    client = make_kinds_app().test_client()

    status = client.get("/api/status").get_json()
    assert status["task"] == "multiclass" and status["model"]["name"] == "iris"
    assert status["class_names"] == ["Iris setosa", "Iris versicolor", "Iris virginica"]
    assert status["gate"] == {"metric": "f1_macro", "min": 0.85, "passed": True}
    html = page(client, "/success")
    assert "Gate: Macro F1 &gt;= 0.85 (got 0.9327): passed" in html
    assert "Macro F1" in html and "Macro precision" in html and "0.9327" in html
    assert html.count('class="cell ') == 9
    per_class = re.search(r'<table class="per-class".*?</table>', html, re.S).group(0)
    assert all(name in per_class for name in ("Iris setosa", "Iris versicolor", "Iris virginica"))
    assert "of actual Iris virginica" in html
    heads = re.findall(r'<th scope="col"[^>]*>([^<]*)</th>', html)
    assert heads == ["Predicted", "Iris setosa", "Iris versicolor", "Iris virginica"]


def test_regression_run_shows_errors_and_no_grid(make_kinds_app) -> None:
    client = make_kinds_app(TRAINING_DAG_ID=KIND_DAGS["regression"]).test_client()

    status = client.get("/api/status").get_json()
    assert status["task"] == "regression" and status["labels"] is None
    assert status["gate"] == {"metric": "rmse", "max": 60.0, "passed": True}
    html = page(client, "/success")
    assert "R²" in html and "RMSE" in html and "MAE" in html and "53.8534" in html
    assert "Gate: RMSE &lt;= 60 (got 53.8534): passed" in html
    assert "confusion" not in html.lower() and "Accuracy" not in html


def test_binary_run_labels_its_grid_from_the_result(make_kinds_app) -> None:
    client = make_kinds_app(TRAINING_DAG_ID=KIND_DAGS["binary"]).test_client()

    html = page(client, "/success")
    assert html.count('class="cell ') == 4
    assert "of actual malignant" in html and ">benign</th>" in html
    assert "ROC AUC" in html and "0.9541" in html


def test_history_charts_the_gate_metric_at_round_ticks_with_failures_apart(
    make_kinds_app,
) -> None:
    client = make_kinds_app(TRAINING_DAG_ID=KIND_DAGS["regression"]).test_client()

    html = page(client, "/history")
    assert "<figcaption>RMSE</figcaption>" in html and "<th>RMSE</th>" in html
    svg = chart(html, "gate")
    ticks = [float(t.text) for t in svg.iter(f"{SVG}text") if "tick" in t.get("class")]
    assert round_ticks(ticks), ticks
    gridlines = [float(line.get("y1")) for line in svg.iter(f"{SVG}line")]
    marks = svg.findall(f"{SVG}a")
    # The run in the middle succeeded without promoting its model: it kept the champion.
    assert [m.get("data-state") for m in marks] == ["failed", "kept", "success"]
    cross = marks[0].find(f"{SVG}circle")
    assert float(cross.get("cy")) > max(gridlines) + 10  # below the lowest gridline
    assert marks[0].get("href") == f"/runs/{quote(marks[0].get('data-run-id'), safe=':')}"
    assert "(a cross: no model was scored)" in svg.find(f"{SVG}title").text


@pytest.mark.parametrize("kind", ["multiclass", "regression", "binary"])
def test_every_model_has_its_own_pages(make_kinds_app, airflow_api, kind: str) -> None:
    client = make_kinds_app().test_client()
    name, dag_id = KIND_DAGS[kind].removesuffix("_training"), KIND_DAGS[kind]

    listing = page(client, "/models/")
    assert all(
        f'href="/models/{n.removesuffix("_training")}"' in listing for n in KIND_DAGS.values()
    )
    latest = page(client, f"/models/{name}")
    assert "Latest run succeeded" in latest and f"<td>{dag_id}</td>" in latest
    assert f'href="/models/{name}/history"' in latest
    status = client.get(f"/models/{name}/status").get_json()
    assert status["dag_id"] == dag_id and status["task"] == kind
    history = page(client, f"/models/{name}/history")
    assert f'href="/models/{name}/runs/' in history and f"{dag_id}: the last 3 runs" in history
    first = airflow_api.runs[dag_id][0]["run"]["dag_run_id"]
    failed = page(client, f"/models/{name}/runs/{quote(first, safe='')}")
    assert "Run failed" in failed and "the input file is empty" in failed


def test_default_routes_keep_showing_the_default_dag(make_kinds_app) -> None:
    client = make_kinds_app().test_client()

    assert client.get("/api").headers["Location"] == "/success"
    assert client.get("/api/status").get_json()["dag_id"] == KIND_DAGS["multiclass"]
    assert client.get("/health").get_json()["status"] == "ok"
    assert client.get("/models/no-such-model").status_code == 404


def test_metrics_export_each_model_it_has_shown(make_kinds_app) -> None:
    client = make_kinds_app().test_client()
    for kind in KIND_DAGS:
        page(client, f"/models/{KIND_DAGS[kind].removesuffix('_training')}")

    text = page(client, "/metrics")
    assert (
        'monitor_model_metric{dag_id="diabetes_training",metric="rmse",model="diabetes"} 53.8534'
        in text
    )
    assert (
        'monitor_model_metric{dag_id="iris_training",metric="f1_macro",model="iris"} 0.9327' in text
    )
    assert (
        'monitor_model_metric{dag_id="cancer_training",metric="accuracy",model="cancer"} 0.886'
        in text
    )


def test_pages_escape_class_names_from_the_result(airflow_api, make_kinds_app) -> None:
    from testkit.results import result

    script = "<script>alert(1)</script>"
    airflow_api.add_run(
        KIND_DAGS["multiclass"], result=result("multiclass", class_names=[script, "b", "c"])
    )

    html = page(make_kinds_app().test_client(), "/success")
    assert script not in html and "&lt;script&gt;" in html
