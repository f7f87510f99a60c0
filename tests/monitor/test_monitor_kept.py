"""A run that succeeded and kept the champion (its model lost to the champion on the same
rows) has a state of its own on every page: neither a success's green nor a failure's red,
with the comparison that decided it. Read from a local REST API stand-in (testkit.airflow_api).

Hermetic: no Airflow process; the real monitor app and REST client over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from monitor import create_app
from testkit.airflow_api import AirflowAPI
from testkit.results import kept_champion, result

DAG_ID = "diabetes_training"
KEPT_LINE = "kept champion v3: rmse 48.4681 against 53.8534"


@pytest.fixture
def runs() -> Iterator[tuple[AirflowAPI, str, str]]:
    """A promoted run, then the latest: one that kept the champion. The stand-in and the two
    run ids."""
    api = AirflowAPI()
    api.add_dag(DAG_ID, "diabetes")
    promoted = api.add_run(DAG_ID, "success", result=result("regression"))
    kept = api.add_run(DAG_ID, "success", result=kept_champion("regression"))
    yield api, promoted, kept
    api.stop()


@pytest.fixture
def client(runs: tuple[AirflowAPI, str, str]) -> FlaskClient:
    api = runs[0]
    config = {"TESTING": True, "AIRFLOW_URL": api.url, "AIRFLOW_PASSWORD": "x"}
    return create_app(config | {"TRAINING_DAG_ID": DAG_ID, "CACHE_TTL": 0.0}).test_client()


def text(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def test_api_status_says_the_champion_was_kept_and_why(client: FlaskClient) -> None:
    status = client.get("/api/status").get_json()
    assert status["state"] == "success" and status["outcome"] == "kept"
    assert status["model"]["promoted"] is False
    assert status["model"]["promotion"] == KEPT_LINE


def test_the_run_page_has_its_own_banner_and_the_comparison(
    client: FlaskClient, runs: tuple[AirflowAPI, str, str]
) -> None:
    html = text(client, f"/runs/{quote(runs[2], safe='')}")
    assert '<section class="banner kept"><h1>Run succeeded</h1>' in html
    assert f'<p class="summary">K{KEPT_LINE[1:]}.</p>' in html
    assert 'class="banner success"' not in html and 'class="banner failure"' not in html
    assert f"<td>{KEPT_LINE}</td>" in html  # the model's table
    assert '<span class="state kept">succeeded, champion kept</span>' in html


def test_history_shows_kept_apart_from_success_in_the_table_and_the_chart(
    client: FlaskClient, runs: tuple[AirflowAPI, str, str]
) -> None:
    _, promoted, kept = runs
    html = text(client, "/history")
    rows = {
        run: state
        for state, run in re.findall(r'<tr class="run (\w+)" data-run-id="([^"]+)"', html)
    }
    assert rows == {promoted: "success", kept: "kept"}
    row = re.search(rf'<tr class="run kept" data-run-id="{re.escape(kept)}">.*?</tr>', html, re.S)
    assert row and '<span class="state kept">kept</span>' in row.group(0)
    assert KEPT_LINE in row.group(0)
    points = dict(re.findall(r'class="point \w+ (\w+)" data-run-id="([^"]+)"', html))
    assert {run: state for state, run in points.items()} == {promoted: "success", kept: "kept"}
    assert '<span class="key kept"></span> kept the champion' in html


def test_a_run_whose_result_has_no_comparison_shows_none(client: FlaskClient) -> None:
    history = text(client, "/history")
    assert history.count('<div class="comparison">') == 1  # the kept run's only
