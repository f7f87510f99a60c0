"""The Compose stack recovers by itself: Postgres or Redis restarted under it, and a task
process killed inside the Celery worker. Faults injected with the docker CLI on the host."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import requests

from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from airflow_rest import AirflowClient, AirflowNotFound
from testkit.advertising import write_csv
from testkit.compose import ComposeStack, docker
from testkit.tasks import task_states
from testkit.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


@pytest.fixture(scope="module")
def admin(stack: ComposeStack) -> AirflowClient:
    return stack.api("admin")


def airflow_healthy(stack: ComposeStack) -> bool:
    try:
        body = requests.get(f"{stack.airflow_url}/api/v2/monitor/health", timeout=5).json()
    except (requests.RequestException, ValueError):
        return False
    return all(body.get(c, {}).get("status") == "healthy" for c in COMPONENTS)


def container_healthy(container: str) -> bool:
    return docker("inspect", "--format", "{{.State.Health.Status}}", container) == "healthy"


def train(admin: AirflowClient, conf: dict | None = None) -> dict:
    run_id = admin.trigger(TRAINING, conf)["dag_run_id"]
    return admin.wait_for_run(TRAINING, run_id, timeout=600)


@pytest.mark.parametrize("service", ["postgres", "redis"])
def test_the_stack_recovers_from_a_restart_of(
    service: str, stack: ComposeStack, admin: AirflowClient
) -> None:
    container = stack.container_id(service)
    docker("restart", container)
    wait_until(lambda: container_healthy(container), 120, f"{service} to be healthy again")
    wait_until(lambda: airflow_healthy(stack), 300, "every Airflow component to be healthy")

    run = train(admin)

    assert run["state"] == "success", task_states(admin, TRAINING, run["dag_run_id"])
    wait_until(
        lambda: requests.get(f"{stack.flask_url}/api/status", timeout=10).status_code == 200,
        120,
        "the Flask monitor to read Airflow again",
    )


# Runs inside the worker container: SIGKILL the process titled "airflow worker -- <ti id>".
KILL_TASK = textwrap.dedent(
    """
    import os, signal, sys
    title = ("airflow worker -- " + sys.argv[1]).encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if open(f"/proc/{pid}/cmdline", "rb").read().rstrip(b"\\0") == title:
                os.kill(int(pid), signal.SIGKILL)
                print(pid)
        except OSError:
            pass
    """
)


def test_a_task_killed_in_the_celery_worker_is_retried(
    stack: ComposeStack, admin: AirflowClient, tmp_path: Path
) -> None:
    csv = tmp_path / "advertising_400k.csv"
    write_csv(csv, rows=400_000, seed=7)
    name = stack.upload_data(csv)
    worker = stack.container_id("airflow-worker")
    run_id = admin.trigger(TRAINING, {"data_path": name})["dag_run_id"]
    path = f"/api/v2/dags/{TRAINING}/dagRuns/{run_id}/taskInstances/build_model/0"

    def killed() -> bool:
        try:
            ti = admin.request("GET", path)
        except AirflowNotFound:  # the candidates are mapped once the split is done
            return False
        if ti["state"] != "running":
            return False
        return bool(docker("exec", worker, "python", "-c", KILL_TASK, ti["id"]))

    wait_until(killed, 300, "build_model to run in the worker, to kill it")

    run = admin.wait_for_run(TRAINING, run_id, timeout=600)
    assert run["state"] == "success", task_states(admin, TRAINING, run_id)
    assert admin.request("GET", path)["try_number"] == 2
