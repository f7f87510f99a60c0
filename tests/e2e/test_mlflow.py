"""The Compose stack's MLflow server: a training run through the REST API shows up in it with
its params, metrics, dataset and model version, and `champion` moves only on a passing gate."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import requests

from adclick.tracking import CHAMPION_ALIAS, DEFAULT_MODEL_NAME, TAG_GATE, TAG_RUN_ID
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from testkit.compose import BUCKET, ComposeStack

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def mlflow_url() -> str:
    url = os.environ.get("E2E_MLFLOW_URL")
    if not url:
        pytest.skip("E2E_MLFLOW_URL is not set: run scripts/e2e-docker")
    return url


@pytest.fixture(scope="module")
def logins(stack: ComposeStack) -> dict[str, tuple[str, str]]:
    """MLflow's accounts besides its admin (secrets-init made them): username -> login."""
    users = json.loads(stack.mlflow_secret("mlflow-users.json"))
    return {name: (name, password) for name, password in users.items()}


@pytest.fixture(scope="module")
def client(mlflow_url: str, logins: dict[str, tuple[str, str]]) -> Iterator:
    """An MLflow client logged in as a model consumer (read-only)."""
    from mlflow import MlflowClient

    username, password = logins["reader"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", username)
        patch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        yield MlflowClient(mlflow_url, mlflow_url)


def train(stack: ComposeStack, conf: dict | None = None) -> tuple[dict, dict]:
    admin = stack.api("admin")
    run_id = admin.trigger(TRAINING, conf or {})["dag_run_id"]
    run = admin.wait_for_run(TRAINING, run_id, timeout=600)
    return run, admin.xcom(TRAINING, run_id, "load_model") or {}


def test_ui_answers_on_the_published_port_after_a_login(
    mlflow_url: str, logins: dict[str, tuple[str, str]]
) -> None:
    assert requests.get(f"{mlflow_url}/health", timeout=10).text.strip() == "OK"
    anonymous = requests.get(mlflow_url, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(mlflow_url, auth=logins["reader"], timeout=10).status_code == 200


def test_training_run_is_tracked_and_its_model_is_champion(stack: ComposeStack, client) -> None:
    run, result = train(stack)
    assert run["state"] == "success", run
    tracked = result["mlflow"]
    mlflow_run = client.get_run(tracked["run_id"])
    assert mlflow_run.data.tags[TAG_RUN_ID] == run["dag_run_id"]
    assert mlflow_run.data.params["test_size"] == "0.3"
    assert mlflow_run.data.metrics["accuracy"] == pytest.approx(result["metrics"]["accuracy"])
    [dataset] = mlflow_run.inputs.dataset_inputs
    assert dataset.dataset.name == "advertising.csv"
    champion = client.get_model_version_by_alias(DEFAULT_MODEL_NAME, CHAMPION_ALIAS)
    assert champion.version == tracked["model_version"]
    assert champion.run_id == tracked["run_id"]
    # The artifacts went through the server into its store.
    names = {a.path for a in client.list_artifacts(tracked["run_id"], "evaluation")}
    assert names == {"evaluation/confusion_matrix.json", "evaluation/roc_curve.json"}
    # That store is the object store's MLflow bucket, which the stack's own keys cannot open.
    keys = [stack.mlflow_secret(f"MLFLOW_S3_{n}") for n in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY")]
    stored = stack.objects(*keys).find(f"{BUCKET}-mlflow/artifacts/")
    wanted = f"{tracked['run_id']}/artifacts/evaluation/roc_curve.json"
    assert any(key.endswith(wanted) for key in stored), stored[:20]
    with pytest.raises(PermissionError):
        stack.objects().ls(f"{BUCKET}-mlflow/")


def test_a_rejected_model_is_registered_but_not_champion(stack: ComposeStack, client) -> None:
    before = client.get_model_version_by_alias(DEFAULT_MODEL_NAME, CHAMPION_ALIAS).version
    run, _ = train(stack, {"min_accuracy": 1.0})
    assert run["state"] == "failed"
    [mlflow_run] = client.search_runs(
        [client.get_experiment_by_name("adclick").experiment_id],
        f"tags.`{TAG_RUN_ID}` = '{run['dag_run_id']}'",
    )
    [version] = client.search_model_versions(f"run_id = '{mlflow_run.info.run_id}'")
    assert version.tags[TAG_GATE] == "rejected"
    assert client.get_model_version_by_alias(DEFAULT_MODEL_NAME, CHAMPION_ALIAS).version == before


def test_anonymous_cannot_read_or_change_the_registry_and_the_monitor_cannot_change_it(
    stack: ComposeStack, mlflow_url: str, logins: dict[str, tuple[str, str]], client
) -> None:
    """From the host's published port: no login, no answer; the monitor's read-only login
    reads the champion but cannot move it or delete the model."""
    champion = client.get_model_version_by_alias(DEFAULT_MODEL_NAME, CHAMPION_ALIAS)
    api = f"{mlflow_url}/api/2.0/mlflow"
    alias = {"name": DEFAULT_MODEL_NAME, "alias": CHAMPION_ALIAS, "version": champion.version}
    writes = [
        ("POST", "registered-models/alias", alias),
        ("DELETE", "registered-models/delete", {"name": DEFAULT_MODEL_NAME}),
        ("POST", "experiments/create", {"name": "intruder"}),
    ]
    reads = [("GET", f"registered-models/get?name={DEFAULT_MODEL_NAME}", None)]
    for method, path, body in [*reads, *writes]:
        response = requests.request(method, f"{api}/{path}", json=body, timeout=30)
        assert response.status_code == 401, (method, path, response.status_code)
    monitor = logins["monitor"]
    read = requests.get(f"{api}/{reads[0][1]}", auth=monitor, timeout=30)
    assert read.status_code == 200
    for method, path, body in writes[:2]:
        response = requests.request(method, f"{api}/{path}", json=body, auth=monitor, timeout=30)
        assert response.status_code == 403, (method, path, response.status_code)
    now = client.get_model_version_by_alias(DEFAULT_MODEL_NAME, CHAMPION_ALIAS)
    assert now.version == champion.version
