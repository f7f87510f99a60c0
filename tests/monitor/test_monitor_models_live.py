"""The monitor finds the training DAGs in the real embedded Airflow through REST API v2 with
the read-only account (tags ``TRAINING_TAGS`` and the model's name), and each model's pages
show its DAG."""

from __future__ import annotations

import pytest

from adclick_airflow.settings import MONITOR_DAG_ID
from adclick_contract import TRAINING_TAGS
from airflow_rest import AirflowClient
from testkit.runs import TRAINING, finished_run

pytestmark = pytest.mark.integration


def test_the_training_dags_are_listed_by_their_tags(embedded_stack) -> None:
    viewer = AirflowClient(
        embedded_stack.api_url, embedded_stack.viewer.username, embedded_stack.viewer.password
    )

    listed = {dag["dag_id"] for dag in viewer.dags_tagged(TRAINING_TAGS)}

    assert TRAINING in listed and MONITOR_DAG_ID not in listed


def test_each_model_has_pages_for_its_own_dag(embedded_stack, client) -> None:
    run = finished_run(embedded_stack)
    models = client.get("/models/").get_data(as_text=True)
    name = next(
        n
        for n, dag in client.application.extensions["monitor"].models.models().items()
        if dag == TRAINING
    )

    assert f'href="/models/{name}"' in models and f"{TRAINING} (default: /api)" in models
    latest = client.get(f"/models/{name}")
    assert latest.status_code == 200 and run["dag_run_id"] in latest.get_data(as_text=True)
    status = client.get(f"/models/{name}/status").get_json()
    default = client.get("/api/status").get_json()
    for key in ("dag_id", "run_id", "state", "metrics", "task", "gate"):
        assert status[key] == default[key], key
    assert client.get(f"/models/{name}/history").status_code == 200
