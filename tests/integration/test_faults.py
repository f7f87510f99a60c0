"""Faults the embedded stack survives with no manual step: a task process killed mid-task,
a crashed scheduler, the api-server down under the Flask monitor, the SMTP server down, and
a read-only model directory. Each is injected for real (signals, stopped processes, a
read-only mount) on the session's stack, which every test leaves as it found it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from adclick.registry import ModelRegistry
from adclick_airflow.settings import RESULT_TASK_ID
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from embedded.stack import EmbeddedStack
from testkit.advertising import write_csv
from testkit.faults import kill_component, restart_component
from testkit.files import read_only, snapshot
from testkit.flask_service import served_monitor
from testkit.processes import task_process
from testkit.tasks import task_log
from testkit.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def task_instances(stack: EmbeddedStack, run_id: str) -> dict[str, dict]:
    return {t["task_id"]: t for t in stack.client().task_instances(TRAINING, run_id)}


@pytest.fixture(scope="module")
def big_dataset(embedded_stack: EmbeddedStack) -> str:
    """Enough rows that each step runs for a while: time to crash it in the middle."""
    name = "advertising_400k.csv"
    write_csv(embedded_stack.data_dir / name, rows=400_000, seed=7)
    return name


def test_a_task_killed_mid_run_is_retried_and_the_run_succeeds(
    embedded_stack: EmbeddedStack, big_dataset: str
) -> None:
    admin = embedded_stack.client()
    run_id = admin.trigger(TRAINING, {"data_path": big_dataset})["dag_run_id"]

    def running_build_model() -> int | None:
        ti = task_instances(embedded_stack, run_id).get("build_model") or {}
        return task_process(ti["id"]) if ti.get("state") == "running" else None

    pid = wait_until(running_build_model, 300, "build_model to run", poll=0.02)
    os.kill(pid, signal.SIGKILL)

    run = admin.wait_for_run(TRAINING, run_id, timeout=600)
    tis = task_instances(embedded_stack, run_id)
    assert run["state"] == "success", {k: v["state"] for k, v in tis.items()}
    assert tis["build_model"]["try_number"] == 2, "the killed try must be retried once"
    registry = ModelRegistry(embedded_stack.model_dir)
    current = registry.current()
    assert current["metadata"]["run_id"] == run_id
    assert Path(current["path"]).stat().st_size > 0
    leftovers = [p.name for p in registry.versions_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == [], "no half-written version may be left behind"


def test_runs_complete_after_the_scheduler_crashes_and_restarts(
    embedded_stack: EmbeddedStack, big_dataset: str
) -> None:
    admin = embedded_stack.client()
    running = admin.trigger(TRAINING, {"data_path": big_dataset})["dag_run_id"]
    wait_until(
        lambda: (
            task_instances(embedded_stack, running).get("load_data", {}).get("state") == "running"
        ),
        120,
        "the first run to be running",
        poll=0.05,
    )
    # A crash: the main process dies at once; the task it was running lives on.
    kill_component(embedded_stack, "scheduler", whole_group=False)
    try:
        queued = admin.trigger(TRAINING, {})["dag_run_id"]
        # The started task finishes on its own; with no scheduler, nothing starts the next.
        wait_until(
            lambda: task_instances(embedded_stack, running)["load_data"]["state"] == "success",
            300,
            "load_data to finish without the scheduler",
            poll=0.2,
        )
        assert task_instances(embedded_stack, running)["data_preprocessing"]["state"] is None
    finally:
        restart_component(embedded_stack, "scheduler")

    for run_id in (running, queued):
        run = admin.wait_for_run(TRAINING, run_id, timeout=600)
        assert run["state"] == "success", task_instances(embedded_stack, run_id)


@pytest.fixture
def monitor_url(embedded_stack: EmbeddedStack, tmp_path: Path) -> Iterator[str]:
    """The Flask monitor under gunicorn with its shipped settings, reading the stack."""
    with served_monitor(embedded_stack, tmp_path) as url:
        yield url


def status_unless_cached(monitor_url: str) -> dict | None:
    """``/api/status`` (code and body) once it no longer answers 200 from the cache."""
    response = requests.get(f"{monitor_url}/api/status", timeout=10)
    if response.status_code == 200:
        return None
    return {"code": response.status_code, **response.json()}


def test_monitor_rides_out_the_api_server_being_down(
    embedded_stack: EmbeddedStack, monitor_url: str
) -> None:
    embedded_stack.client().trigger(TRAINING, {})  # there is a latest run to show
    assert requests.get(f"{monitor_url}/api/status", timeout=10).status_code == 200

    kill_component(embedded_stack, "api-server", signal.SIGTERM)
    try:
        # Served from the cache until its TTL (2 s) ends; then Airflow's absence shows.
        status = wait_until(
            lambda: status_unless_cached(monitor_url), 60, "the cached answer to expire", poll=0.2
        )
        assert status["code"] == 503
        assert status["error"] == "airflow_unreachable"
        health = requests.get(f"{monitor_url}/health", timeout=10)
        assert health.status_code == 200
        assert health.json()["airflow"]["reachable"] is False
    finally:
        restart_component(embedded_stack, "api-server")

    wait_until(
        lambda: requests.get(f"{monitor_url}/api/status", timeout=10).status_code == 200,
        120,
        "/api/status to recover by itself",
        poll=0.5,
    )
    health = requests.get(f"{monitor_url}/health", timeout=10).json()
    assert health["airflow"]["reachable"] is True


def test_smtp_down_still_promotes_the_model_and_fails_the_mail_visibly(
    embedded_stack: EmbeddedStack,
) -> None:
    admin = embedded_stack.client()
    kill_component(embedded_stack, "mailcatcher", signal.SIGTERM)
    try:
        run_id = admin.trigger(TRAINING, {})["dag_run_id"]
        run = admin.wait_for_run(TRAINING, run_id, timeout=300)
    finally:
        restart_component(embedded_stack, "mailcatcher")

    tis = task_instances(embedded_stack, run_id)
    assert tis[RESULT_TASK_ID]["state"] == "success"
    result = admin.xcom(TRAINING, run_id, RESULT_TASK_ID)
    assert ModelRegistry(embedded_stack.model_dir).current()["version"] == result["version"]
    # The failed notification shows in the run, and it was tried twice, not in a storm.
    assert run["state"] == "failed"
    assert tis["send_email"]["state"] == "failed"
    assert tis["send_email"]["try_number"] == 2
    log = task_log(admin, TRAINING, run_id, "send_email", 2)
    assert "Connection refused" in log or "connection refused" in log.lower(), log[-2000:]


@pytest.fixture
def read_only_model_dir(embedded_stack: EmbeddedStack) -> Iterator[Path]:
    """The model directory, holding a current model, made read-only."""
    if ModelRegistry(embedded_stack.model_dir).current() is None:
        admin = embedded_stack.client()
        run = admin.wait_for_run(TRAINING, admin.trigger(TRAINING, {})["dag_run_id"], 300)
        assert run["state"] == "success", task_instances(embedded_stack, run["dag_run_id"])
    with read_only(embedded_stack.model_dir) as model_dir:
        yield model_dir


def test_a_read_only_model_dir_fails_clearly_and_keeps_the_model(
    embedded_stack: EmbeddedStack, read_only_model_dir: Path
) -> None:
    admin = embedded_stack.client()
    before = snapshot(read_only_model_dir)

    run_id = admin.trigger(TRAINING, {})["dag_run_id"]
    run = admin.wait_for_run(TRAINING, run_id, timeout=600)

    assert run["state"] == "failed"
    tis = task_instances(embedded_stack, run_id)
    assert tis[RESULT_TASK_ID]["state"] == "failed"
    log = task_log(admin, TRAINING, run_id, RESULT_TASK_ID, tis[RESULT_TASK_ID]["try_number"])
    assert str(read_only_model_dir) in log and "Read-only file system" in log, log[-2000:]
    assert snapshot(read_only_model_dir) == before
