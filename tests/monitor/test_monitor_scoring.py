"""Each model's latest scoring batches (/models/<name>/scoring), read from a local REST API
stand-in (testkit.airflow_api) serving the iris fixture model's scoring DAG: input, rows,
model version, state, drift share and drifted columns, the files under the data root and the
run in Airflow; in the Flask test client and, served by gunicorn as deployed, in a real
browser.

Hermetic: no Airflow process; the real monitor app and REST client over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from adclick_contract import DRIFT_TASK_ID, DRIFT_TRACKING_TASK_ID, SCORING_TAGS, SCORING_TASK_ID
from testkit.airflow_api import AirflowAPI
from testkit.browser import Browser
from testkit.flask_service import launched_monitor

VERSION = "20261206T080000.000000Z-1a2b3c4d"
ROOT = "/srv/data/predictions"  # the server's directories, which pages must not show
MLFLOW_REPORT = "http://127.0.0.1:5001/#/experiments/1/runs/4f2a/artifacts/drift/v.drift.html"


def scored(name: str, rows: int) -> dict:
    return {
        "model": "iris",
        "model_version": VERSION,
        "input": f"/srv/data/incoming/{name}.csv",
        "rows": rows,
        "parquet": f"{ROOT}/{name}/{VERSION}.parquet",
    }


def drift_report(name: str, share: float, drifted: list[str]) -> dict:
    return {
        "share": share,
        "threshold": 0.5,
        "drift": share >= 0.5,
        "drifted_columns": drifted,
        "html": f"{ROOT}/{name}/{VERSION}.drift.html",
    }


@pytest.fixture
def scoring_api(airflow_api: AirflowAPI) -> AirflowAPI:
    """The stand-in with iris's scoring DAG: a batch like the training data, a shifted one,
    one that failed to score (oldest first)."""
    airflow_api.add_dag("iris_scoring", "iris", kind=SCORING_TAGS)
    airflow_api.add_run(
        "iris_scoring",
        returned={
            SCORING_TASK_ID: scored("monday", 150),
            DRIFT_TASK_ID: drift_report("monday", 0.0, []),
            DRIFT_TRACKING_TASK_ID: {"report_url": "javascript:alert(1)"},  # edited XCom
        },
        conf={"input": "monday.csv"},
    )
    airflow_api.add_run(
        "iris_scoring",
        returned={
            SCORING_TASK_ID: scored("shifted <b>", 3000),
            DRIFT_TASK_ID: drift_report("shifted <b>", 0.75, ["petal width (cm)", "sepal <i>"]),
            DRIFT_TRACKING_TASK_ID: {"report_url": MLFLOW_REPORT},
        },
        conf={"input": "shifted <b>.csv"},
    )
    airflow_api.add_run("iris_scoring", "failed", conf={"input": "broken.csv"})
    return airflow_api


def test_the_scoring_page_lists_the_latest_batches_newest_first(
    scoring_api: AirflowAPI, make_kinds_app
) -> None:
    client = make_kinds_app().test_client()

    response = client.get("/models/iris/scoring")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    table = html[html.index("<table") :]
    assert table.index("broken.csv") < table.index("shifted &lt;b&gt;.csv") < table.index("monday")
    assert "<b>" not in html and "sepal &lt;i&gt;" in html  # names from the data, escaped
    assert html.count(VERSION) >= 2 and ">3000<" in html and ">150<" in html
    assert "75%" in html and "0%" in html and "petal width (cm)" in html
    assert f"predictions/monday/{VERSION}.drift.html" in html
    # The report tracked in MLflow is linked; a link that is not http(s) never is.
    assert re.findall(r'<a class="report" href="([^"]+)"', html) == [MLFLOW_REPORT]
    assert "javascript:" not in html
    assert "/srv/data" not in html
    assert f"{scoring_api.url}/dags/iris_scoring/runs/manual__" in html
    assert 'class="state failed">failed' in html


def test_the_scoring_page_charts_the_drift_share_per_batch_with_gaps(
    scoring_api: AirflowAPI, make_kinds_app
) -> None:
    html = make_kinds_app().test_client().get("/models/iris/scoring").get_data(as_text=True)

    chart = html[html.index('data-chart="drift"') : html.index("</svg>")]
    points = re.findall(r'<a href="#(batch-\d)" class="point (\w+) (\w+)"', chart)
    assert points == [  # oldest first; the batch that failed has no report: a cross, not a 0
        ("batch-2", "value", "success"),
        ("batch-1", "value", "success"),
        ("batch-0", "missing", "failed"),
    ]
    assert "75% drifted" in chart and "no drift report" in chart
    assert '<text class="axis tick" x="80" y="20.0" text-anchor="end">100%</text>' in chart
    line = re.search(r'<polyline class="line" points="([^"]+)"', chart)
    assert line is not None and len(line.group(1).split()) == 2  # no segment to the gap
    rows = re.findall(r'<tr class="batch \w+" id="(batch-\d)"', html)
    assert rows == ["batch-0", "batch-1", "batch-2"]  # every point's row is on the page


def test_metrics_export_the_latest_drift_share_of_each_model_read(
    scoring_api: AirflowAPI, make_kinds_app
) -> None:
    client = make_kinds_app().test_client()
    assert "monitor_drift_share{" not in client.get("/metrics").get_data(as_text=True)
    calls = len(scoring_api.calls)

    client.get("/models/iris/scoring")
    read = len(scoring_api.calls)
    text = client.get("/metrics").get_data(as_text=True)

    # The newest batch failed before its report: the latest share is the one before it.
    assert 'monitor_drift_share{model="iris"} 0.75' in text
    assert read > calls and len(scoring_api.calls) == read  # a scrape asks Airflow nothing


def test_a_model_without_scoring_runs_says_so_and_an_unknown_one_is_404(
    airflow_api: AirflowAPI, make_kinds_app
) -> None:
    airflow_api.add_dag("diabetes_scoring", "diabetes", kind=SCORING_TAGS)
    client = make_kinds_app().test_client()

    assert "has not scored a batch yet" in client.get("/models/diabetes/scoring").get_data(
        as_text=True
    )
    assert "no scoring DAG" in client.get("/models/cancer/scoring").get_data(as_text=True)
    assert client.get("/models/nobody/scoring").status_code == 404
    assert "/models/iris/scoring" in client.get("/models/").get_data(as_text=True)


def test_airflow_down_gives_the_unavailable_page(make_down_app) -> None:
    response = make_down_app().test_client().get("/models/iris/scoring")

    assert response.status_code == 503 and response.headers["Retry-After"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    opened = Browser()
    yield opened
    opened.close()


@pytest.mark.integration
def test_the_scoring_page_in_a_real_browser(
    scoring_api: AirflowAPI, browser: Browser, tmp_path: Path
) -> None:
    settings = {
        "MONITOR_AIRFLOW_URL": scoring_api.url,
        "MONITOR_AIRFLOW_PASSWORD": "x",
        "MONITOR_DAG_ID": "iris_training",
        "MONITOR_CACHE_TTL": "0",
    }
    with launched_monitor(tmp_path, **settings) as url:
        problems = browser.open(f"{url}/models/iris/scoring")
        rows = browser.evaluate(
            "[...document.querySelectorAll('tr.batch')].map(r => ["
            "r.querySelector('td').firstChild.textContent.trim(),"
            "r.querySelector('.state').textContent, r.querySelector('.drift').innerText.trim()])"
        )
    assert problems == []
    assert rows == [
        ["broken.csv", "failed", "-"],
        ["shifted <b>.csv", "success", "75%\npetal width (cm), sepal <i>"],
        ["monday.csv", "success", "0%"],
    ]
