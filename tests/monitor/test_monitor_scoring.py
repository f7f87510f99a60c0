"""Each model's latest scoring batches (/models/<name>/scoring), read from a local REST API
stand-in (testkit.airflow_api) serving the iris fixture model's scoring DAG: input, rows,
model version, state, drift share and drifted columns, the files under the data root and the
run in Airflow; in the Flask test client and, served by gunicorn as deployed, in a real
browser.

Hermetic: no Airflow process; the real monitor app and REST client over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adclick_contract import DRIFT_TASK_ID, SCORING_TAGS, SCORING_TASK_ID
from testkit.airflow_api import AirflowAPI
from testkit.browser import Browser
from testkit.flask_service import launched_monitor

VERSION = "20261206T080000.000000Z-1a2b3c4d"
ROOT = "/srv/data/predictions"  # the server's directories, which pages must not show


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
        },
        conf={"input": "monday.csv"},
    )
    airflow_api.add_run(
        "iris_scoring",
        returned={
            SCORING_TASK_ID: scored("shifted <b>", 3000),
            DRIFT_TASK_ID: drift_report("shifted <b>", 0.75, ["petal width (cm)", "sepal <i>"]),
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
    assert html.index("broken.csv") < html.index("shifted &lt;b&gt;.csv") < html.index("monday.csv")
    assert "<b>" not in html and "sepal &lt;i&gt;" in html  # names from the data, escaped
    assert html.count(VERSION) >= 2 and ">3000<" in html and ">150<" in html
    assert "75%" in html and "0%" in html and "petal width (cm)" in html
    assert f"predictions/monday/{VERSION}.drift.html" in html
    assert "/srv/data" not in html
    assert f"{scoring_api.url}/dags/iris_scoring/runs/manual__" in html
    assert 'class="state failed">failed' in html


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
