"""A team's own model in the Compose stack: a fixture model (iris: multiclass, text labels)
deployed as a module in `dags/models/` (scripts/e2e-docker mounts the folder a team's
checkout would hold, read-only, on the scheduler, the DAG processor and the worker), its CSV
put in the bucket's `data/` prefix, trained on the Celery worker, registered in MLflow as its
own model and shown on the monitor's pages for it."""

from __future__ import annotations

import os

import pytest
import requests

from adclick.tracking import CHAMPION_ALIAS
from adclick_airflow.settings import RESULT_TASK_ID
from airflow_rest import AirflowClient
from testkit.compose import BUCKET, ComposeStack
from testkit.fixture_models import export_csv
from testkit.runs import unsuccessful
from testkit.scaleout import host_of, hostname, worker_containers

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

NAME = "iris"
DAG_ID = f"{NAME}_training"


@pytest.fixture(scope="module")
def trained(stack: ComposeStack, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run of the model's own DAG on its data in the bucket, waited for."""
    data_path = stack.upload_data(export_csv(NAME, tmp_path_factory.mktemp("data")))
    admin = stack.api("admin", timeout=30)
    admin.set_paused(DAG_ID, False)
    run_id = admin.trigger(DAG_ID, {"data_path": data_path})["dag_run_id"]
    run = admin.wait_for_run(DAG_ID, run_id, timeout=420)
    assert run["state"] == "success", unsuccessful(admin, DAG_ID, run_id)
    return {"run": run, "result": admin.xcom(DAG_ID, run_id, RESULT_TASK_ID), "admin": admin}


def test_the_module_becomes_a_dag_that_trains_on_the_worker(
    stack: ComposeStack, trained: dict
) -> None:
    admin: AirflowClient = trained["admin"]
    result, run_id = trained["result"], trained["run"]["dag_run_id"]
    assert (result["model"], result["task"]) == (NAME, "multiclass"), result
    assert result["labels"] == ["setosa", "versicolor", "virginica"], result
    assert result["promoted"] is True and result["metrics"]["f1_macro"] >= 0.9, result
    assert result["rows"] == 150, result  # read from the bucket's data/ prefix
    assert stack.objects().exists(f"{BUCKET}/model/{NAME}/current.json")
    hosts = {host_of(t) for t in admin.task_instances(DAG_ID, run_id)} - {""}
    assert hosts == {hostname(c) for c in worker_containers(stack.project)}, hosts


def test_the_model_is_registered_in_mlflow_under_its_own_name(
    stack: ComposeStack, trained: dict
) -> None:
    tracked = trained["result"]["mlflow"]
    mlflow_url = os.environ["E2E_MLFLOW_URL"]
    champion = requests.get(
        f"{mlflow_url}/api/2.0/mlflow/registered-models/alias",
        params={"name": NAME, "alias": CHAMPION_ALIAS},
        auth=stack.mlflow_login("reader"),
        timeout=30,
    )
    assert champion.status_code == 200, champion.text
    version = champion.json()["model_version"]
    assert (version["version"], version["run_id"]) == (
        str(tracked["model_version"]),
        tracked["run_id"],
    )


def test_the_monitor_shows_the_models_run(stack: ComposeStack, trained: dict) -> None:
    run_id = trained["run"]["dag_run_id"]
    status = requests.get(f"{stack.flask_url}/models/{NAME}/status", timeout=30)
    assert status.status_code == 200, status.text
    assert run_id in status.text
    page = requests.get(f"{stack.flask_url}/models/{NAME}", timeout=30)
    assert page.status_code == 200 and run_id in page.text
    assert "virginica" in page.text  # the confusion matrix, labelled by class
