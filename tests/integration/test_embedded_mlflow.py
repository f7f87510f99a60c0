"""The embedded stack records its training runs in its MLflow server: the run, its Airflow
tags, the model version and `champion`; links in the mail and the monitor; MLflow down fails
`load_model` loudly after its retries and changes nothing, and the run after it is back
registers normally."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests

from adclick.tracking import CHAMPION_ALIAS, DEFAULT_MODEL_NAME, TAG_DAG_ID, TAG_TRY, TAG_URL
from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR
from adclick_airflow.settings import RESULT_TASK_ID
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from airflow_rest import AirflowClient
from embedded.mlflow_server import MlflowServer
from embedded.stack import EmbeddedStack
from testkit.files import snapshot
from testkit.runs import finished_run
from testkit.waiting import wait_until

pytestmark = pytest.mark.integration

# MLflow's start-up on a busy 2-core machine (its schema is there already).
RESTART_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def mlflow_client(mlflow_server: MlflowServer):
    from mlflow import MlflowClient

    return MlflowClient(mlflow_server.url, mlflow_server.url)


def patient_client(stack: EmbeddedStack) -> AirflowClient:
    """A machine busy with other work can keep the api-server silent for long."""
    return stack.client(timeout=60)


def run_training(stack: EmbeddedStack) -> tuple[dict, dict | None]:
    run = finished_run(stack)
    return run, patient_client(stack).xcom(TRAINING, run["dag_run_id"], RESULT_TASK_ID)


def champion(mlflow_client) -> str | None:
    try:
        return mlflow_client.get_model_version_by_alias(DEFAULT_MODEL_NAME, CHAMPION_ALIAS).version
    except Exception:
        return None


@pytest.fixture(scope="module")
def tracked_run(embedded_stack: EmbeddedStack) -> tuple[dict, dict]:
    run, result = run_training(embedded_stack)
    assert run["state"] == "success", run
    return run, result


def test_a_dag_run_is_an_mlflow_run_and_its_model_the_champion(
    embedded_stack: EmbeddedStack, tracked_run: tuple[dict, dict], mlflow_client
) -> None:
    run, result = tracked_run
    tracked = result["mlflow"]
    mlflow_run = mlflow_client.get_run(tracked["run_id"])
    tags = mlflow_run.data.tags
    assert tags[TAG_DAG_ID] == TRAINING and tags[TAG_TRY] == "1"
    assert tags[TAG_URL].endswith(f"/dags/{TRAINING}/runs/{quote(run['dag_run_id'], safe='')}")
    assert mlflow_run.data.metrics["accuracy"] == pytest.approx(result["metrics"]["accuracy"])
    assert mlflow_run.inputs.dataset_inputs[0].dataset.name == "advertising.csv"
    assert champion(mlflow_client) == tracked["model_version"]
    assert tracked["run_url"].startswith(embedded_stack.mlflow_url)

    report = embedded_stack.mail.wait_for(
        lambda m: "promoted" in m["Subject"] and run["dag_run_id"] in m["Subject"]
    )
    assert tracked["run_url"] in report["HTML"] and tracked["version_url"] in report["HTML"]


def test_the_monitor_links_the_mlflow_run_and_version(
    embedded_stack: EmbeddedStack, tracked_run: tuple[dict, dict]
) -> None:
    run, result = tracked_run
    client = patient_client(embedded_stack)
    wait_until(
        lambda: (
            (client.latest_run(MONITOR) or {}).get("conf", {}).get("source_run_id")
            == run["dag_run_id"]
        ),
        120,
        "the monitor run this training run triggers",
    )
    client.wait_for_run(MONITOR, client.latest_run(MONITOR)["dag_run_id"], timeout=180)

    def status() -> dict | None:
        try:
            body = requests.get(f"{embedded_stack.flask_url}/api/status", timeout=5).json()
        except (requests.RequestException, ValueError):
            return None
        return body if body.get("run_id") == run["dag_run_id"] else None

    body = wait_until(status, 60, "the monitor to show the run")
    tracked = body["model"]["mlflow"]
    assert tracked["run_url"] == result["mlflow"]["run_url"]
    assert tracked["model_version"] == result["mlflow"]["model_version"]
    assert tracked["champion"] is True
    page = requests.get(
        f"{embedded_stack.flask_url}/runs/{quote(run['dag_run_id'], safe='')}", timeout=10
    ).text
    assert result["mlflow"]["version_url"] in page


def test_mlflow_down_fails_load_model_and_the_next_run_registers(
    embedded_stack: EmbeddedStack,
    tracked_run: tuple[dict, dict],
    mlflow_server: MlflowServer,
    mlflow_client,
) -> None:
    before = snapshot(embedded_stack.model_dir)
    alias = champion(mlflow_client)
    mlflow_server.stop()
    try:
        run, _ = run_training(embedded_stack)
    finally:
        mlflow_server.start(RESTART_TIMEOUT_S)

    assert run["state"] == "failed"
    client = patient_client(embedded_stack)
    [load_model] = [
        t
        for t in client.task_instances(TRAINING, run["dag_run_id"])
        if t["task_id"] == RESULT_TASK_ID
    ]
    assert load_model["state"] == "failed" and load_model["try_number"] == 3  # after its retries
    assert snapshot(embedded_stack.model_dir) == before
    assert champion(mlflow_client) == alias
    mail = embedded_stack.mail.wait_for(
        lambda m: (
            "FAILED" in m["Subject"]
            and run["dag_run_id"] in m["HTML"]
            and RESULT_TASK_ID in m["Subject"]
        )
    )
    assert f"MLflow at {mlflow_server.url}" in mail["HTML"]

    run, result = run_training(embedded_stack)
    assert run["state"] == "success", run
    assert champion(mlflow_client) == result["mlflow"]["model_version"] != alias
