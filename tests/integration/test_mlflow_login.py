"""MLflow's login, on a real tracking server of the embedded stack's kind: anonymous gets 401
for reads and writes (a browser the login prompt); the read-only accounts (the monitor's, a
model consumer's) read but cannot change what the tasks' writer recorded; uploads over the
cap are refused; the AI gateway and the browser's usage reports are off."""

from __future__ import annotations

import uuid

import pytest
import requests

from embedded.mlflow_server import MlflowServer

pytestmark = pytest.mark.integration

READ_ONLY = ("monitor", "reader")
OVER_CAP = 65 * 1024 * 1024  # upload_limit.DEFAULT_LIMIT_MB is 64


def api(server: MlflowServer, path: str) -> str:
    return f"{server.url}/api/2.0/mlflow/{path}"


def login(server: MlflowServer, role: str) -> tuple[str, str]:
    account = server.account(role)
    return account.username, account.password


@pytest.fixture(scope="module")
def recorded(mlflow_server: MlflowServer) -> dict[str, str]:
    """What the tasks record, as they do: logged in as the writer (the session's MLflow
    clients are): an experiment, a run with a metric and a file, a model version, its alias."""
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.url, mlflow_server.url)
    name = f"login-{uuid.uuid4().hex[:8]}"
    experiment_id = client.create_experiment(name)
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "accuracy", 0.9)
    client.log_text(run_id, "weights", "model/weights.txt")
    client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run_id}/model", run_id).version
    client.set_registered_model_alias(name, "champion", version)
    return {"experiment_id": experiment_id, "run_id": run_id, "model": name, "version": version}


def writes(recorded: dict[str, str]) -> list[tuple[str, str, dict]]:
    """Changes an attacker wants: (method, API path, body)."""
    model, version = recorded["model"], recorded["version"]
    return [
        ("POST", "runs/create", {"experiment_id": recorded["experiment_id"]}),
        ("POST", "runs/log-metric", {"run_id": recorded["run_id"], "key": "accuracy",
                                     "value": 1.0, "timestamp": 0}),
        ("POST", "registered-models/alias", {"name": model, "alias": "champion",
                                             "version": version}),
        ("POST", "model-versions/set-tag", {"name": model, "version": version,
                                            "key": "quality_gate", "value": "passed"}),
        ("DELETE", "registered-models/delete", {"name": model}),
    ]  # fmt: skip


def test_anonymous_is_refused_every_read_and_write(
    mlflow_server: MlflowServer, recorded: dict[str, str]
) -> None:
    reads = [
        ("GET", "experiments/search?max_results=5", None),
        ("GET", f"runs/get?run_id={recorded['run_id']}", None),
        ("GET", f"registered-models/alias?name={recorded['model']}&alias=champion", None),
    ]
    for method, path, body in [*reads, *writes(recorded)]:
        response = requests.request(method, api(mlflow_server, path), json=body, timeout=30)
        assert response.status_code == 401, (method, path, response.status_code)
    upload = requests.put(
        f"{mlflow_server.url}/api/2.0/mlflow-artifacts/artifacts/x/evil.pkl", data=b"x", timeout=30
    )
    assert upload.status_code == 401
    ui = requests.get(mlflow_server.url, timeout=30)
    assert ui.status_code == 401
    assert ui.headers["WWW-Authenticate"].startswith("Basic")  # the browser asks for a login
    assert requests.get(f"{mlflow_server.url}/health", timeout=30).status_code == 200


@pytest.mark.parametrize("role", READ_ONLY)
def test_a_read_only_account_reads_but_cannot_change_the_writers_records(
    mlflow_server: MlflowServer, recorded: dict[str, str], role: str
) -> None:
    auth = login(mlflow_server, role)
    run = requests.get(
        api(mlflow_server, f"runs/get?run_id={recorded['run_id']}"), auth=auth, timeout=30
    )
    assert run.status_code == 200
    assert run.json()["run"]["data"]["metrics"][0]["value"] == 0.9
    for method, path, body in writes(recorded):
        response = requests.request(
            method, api(mlflow_server, path), json=body, auth=auth, timeout=30
        )
        assert response.status_code == 403, (role, method, path, response.status_code)
    artifact = f"{recorded['experiment_id']}/{recorded['run_id']}/artifacts/model/weights.txt"
    upload = requests.put(
        f"{mlflow_server.url}/api/2.0/mlflow-artifacts/artifacts/{artifact}",
        data=b"evil",
        auth=auth,
        timeout=30,
    )
    assert upload.status_code == 403
    alias = requests.get(
        api(mlflow_server, f"registered-models/alias?name={recorded['model']}&alias=champion"),
        auth=login(mlflow_server, "writer"),
        timeout=30,
    )
    assert alias.json()["model_version"]["version"] == recorded["version"]


def test_an_upload_over_the_cap_is_refused(
    mlflow_server: MlflowServer, recorded: dict[str, str]
) -> None:
    auth = login(mlflow_server, "writer")
    url = f"{mlflow_server.url}/api/2.0/mlflow-artifacts/artifacts/{recorded['experiment_id']}"
    small = requests.put(f"{url}/small.bin", data=b"x" * 1024, auth=auth, timeout=60)
    assert small.status_code == 200

    def chunks():  # no declared length: counted as it comes
        for _ in range(OVER_CAP // (1024 * 1024)):
            yield b"x" * (1024 * 1024)

    for data in (b"x" * OVER_CAP, chunks()):
        response = requests.put(f"{url}/big.bin", data=data, auth=auth, timeout=120)
        assert response.status_code == 413, response.text[:200]


def test_the_ai_gateway_and_browser_usage_reports_are_off(mlflow_server: MlflowServer) -> None:
    info = requests.get(f"{mlflow_server.url}/api/3.0/mlflow/server-info", timeout=30).json()
    assert info["features_enabled"]["gateway"] is False
    telemetry = requests.get(
        f"{mlflow_server.url}/ajax-api/3.0/mlflow/ui-telemetry",
        auth=login(mlflow_server, "reader"),
        timeout=30,
    )
    assert telemetry.json()["disable_ui_telemetry"] is True
