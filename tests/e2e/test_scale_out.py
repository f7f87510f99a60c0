"""Scale-out on the real engine: the main host's workers scaled to two share a grid run; a
worker from docker-compose.worker.yaml, joined over the network alone with no shared volume,
does whole training runs (mail and MLflow included) but never a task of the main host's
queue, and a grid run survives it being killed mid-task."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from adclick_airflow.settings import (
    MAIN_HOST_QUEUE,
    MONITOR_DAG_ID,
    RESULT_TASK_ID,
    TRAINING_DAG_ID,
)
from airflow_rest import AirflowClient
from testkit.compose import ComposeStack, docker
from testkit.runs import unsuccessful
from testkit.scaleout import (
    grid,
    has_object_store,
    host_of,
    hostname,
    hostnames_of_tries,
    instances,
    remote_worker,
    scale_workers,
    worker_containers,
)
from testkit.waiting import wait_until
from testkit.worker_secrets import forbidden_in

pytestmark = pytest.mark.docker
GRID_SIZE = 8


@pytest.fixture(scope="module")
def admin(stack: ComposeStack) -> AirflowClient:
    return stack.api("admin", timeout=30)


@pytest.fixture(scope="module")
def remote(stack: ComposeStack) -> Iterator[str]:
    with remote_worker(stack) as container:
        yield container


def test_scaled_workers_come_up_healthy_and_share_a_grid_run(
    stack: ComposeStack, admin: AirflowClient
) -> None:
    try:
        workers = scale_workers(stack, 2)
        assert len(workers) == 2
        hosts = {hostname(w) for w in workers}
        run_id = admin.trigger(TRAINING_DAG_ID, {"candidates": grid(GRID_SIZE)})["dag_run_id"]
        # Two workers starting and a grid on a loaded machine can take minutes.
        run = admin.wait_for_run(TRAINING_DAG_ID, run_id, timeout=600)
        assert run["state"] == "success", unsuccessful(admin, TRAINING_DAG_ID, run_id)
        fits = instances(admin, TRAINING_DAG_ID, run_id, "build_model")
        assert sorted(t["map_index"] for t in fits) == list(range(GRID_SIZE))
        assert {host_of(t) for t in fits} == hosts, "both workers took candidates"
        result = admin.xcom(TRAINING_DAG_ID, run_id, RESULT_TASK_ID)
        assert [c["index"] for c in result["candidates"]] == list(range(GRID_SIZE))
        best = max(c["metrics"]["accuracy"] for c in result["candidates"])
        assert result["metrics"]["accuracy"] == best
        assert result["candidates"][result["candidate"]]["metrics"]["accuracy"] == best
    finally:
        scale_workers(stack, 1)


@pytest.fixture(scope="module")
def object_store(stack: ComposeStack) -> None:
    if not has_object_store(stack):
        pytest.skip("the stack keeps run files on local volumes: no object store to share")


def test_the_remote_worker_holds_no_database_password_and_nothing_that_signs(
    stack: ComposeStack, remote: str
) -> None:
    assert forbidden_in(remote, stack.secrets) == []


@pytest.mark.usefixtures("object_store")
def test_the_remote_worker_alone_runs_training_and_leaves_the_main_host_queue_alone(
    stack: ComposeStack, admin: AirflowClient, remote: str
) -> None:
    """With the main host's worker stopped, the worker elsewhere does a whole training run,
    the report mail and the MLflow registration included; the monitor run it starts waits
    in the main host's queue while that worker is up and idle, and runs there once the main
    host's worker is back.

    Stopped, not paused: a paused worker still holds the broker request it was blocked in,
    and the first task queued would be handed to it, frozen."""
    (main,) = worker_containers(stack.project)
    docker("stop", main)
    try:
        run_id = admin.trigger(TRAINING_DAG_ID)["dag_run_id"]
        run = admin.wait_for_run(TRAINING_DAG_ID, run_id, timeout=300)
        assert run["state"] == "success", unsuccessful(admin, TRAINING_DAG_ID, run_id)
        # Tasks skipped without running (the approval's, when none is asked for) have no host.
        tis = admin.task_instances(TRAINING_DAG_ID, run_id)
        ran = {t["task_id"]: host_of(t) for t in tis if host_of(t)}
        assert set(ran.values()) == {hostname(remote)}, ran
        assert {"load_data", "build_model", "load_model", "send_email", "trigger_monitor"} <= set(
            ran
        ), ran
        result = admin.xcom(TRAINING_DAG_ID, run_id, RESULT_TASK_ID)
        assert result["promoted"] is True and result["mlflow"]["model_version"], result

        def monitor_task_queued() -> tuple[str, dict] | None:
            for monitor in admin.runs(MONITOR_DAG_ID, limit=5):
                if (monitor.get("conf") or {}).get("source_run_id") != run_id:
                    continue
                tis = admin.task_instances(MONITOR_DAG_ID, monitor["dag_run_id"])
                queued = next((t for t in tis if t["state"] == "queued"), None)
                return (monitor["dag_run_id"], queued) if queued else None
            return None

        monitor_id, queued = wait_until(monitor_task_queued, 120, "a monitor task queued", poll=1)
        assert queued["queue"] == MAIN_HOST_QUEUE
        # Long enough for an idle worker to take it: it polls the broker continuously.
        time.sleep(10)
        states = {
            t["task_id"]: (t["state"], host_of(t))
            for t in admin.task_instances(MONITOR_DAG_ID, monitor_id)
        }
        assert states[queued["task_id"]] == ("queued", ""), states
    finally:
        docker("start", main)
    run = admin.wait_for_run(MONITOR_DAG_ID, monitor_id, timeout=300)
    assert run["state"] == "success", unsuccessful(admin, MONITOR_DAG_ID, monitor_id)
    ran = [t for t in admin.task_instances(MONITOR_DAG_ID, monitor_id) if host_of(t)]
    assert ran and {host_of(t) for t in ran} == {hostname(main)}
    assert {t["queue"] for t in ran} == {MAIN_HOST_QUEUE}


@pytest.mark.usefixtures("object_store")
def test_a_grid_run_spreads_to_the_remote_worker_and_survives_its_death(
    stack: ComposeStack, admin: AirflowClient, remote: str
) -> None:
    (main,) = worker_containers(stack.project)
    hosts = {hostname(main), hostname(remote)}
    conf = {"candidates": grid(GRID_SIZE)}
    shared = admin.trigger(TRAINING_DAG_ID, conf)["dag_run_id"]
    run = admin.wait_for_run(TRAINING_DAG_ID, shared, timeout=300)
    assert run["state"] == "success", unsuccessful(admin, TRAINING_DAG_ID, shared)
    assert hostnames_of_tries(admin, TRAINING_DAG_ID, shared, "build_model") == hosts
    assert admin.xcom(TRAINING_DAG_ID, shared, RESULT_TASK_ID)["promoted"] is True
    done_remotely = next(
        t
        for t in instances(admin, TRAINING_DAG_ID, shared, "build_model")
        if host_of(t) == hostname(remote)
    )

    run_id = admin.trigger(TRAINING_DAG_ID, conf)["dag_run_id"]

    def fitting_on_remote() -> dict | None:
        fits = instances(admin, TRAINING_DAG_ID, run_id, "build_model")
        remote_host = hostname(remote)
        return next(
            (t for t in fits if t["state"] == "running" and host_of(t) == remote_host), None
        )

    wait_until(fitting_on_remote, 300, "a candidate running on the remote worker")
    docker("kill", remote)
    run = admin.wait_for_run(TRAINING_DAG_ID, run_id, timeout=600)
    assert run["state"] == "success", unsuccessful(admin, TRAINING_DAG_ID, run_id)
    result = admin.xcom(TRAINING_DAG_ID, run_id, RESULT_TASK_ID)
    assert result["promoted"] is True and len(result["candidates"]) == GRID_SIZE
    # The worker is gone, and with it its log server: the log comes from the bucket.
    path = (
        f"/api/v2/dags/{TRAINING_DAG_ID}/dagRuns/{quote(shared, safe='')}/taskInstances/"
        f"build_model/logs/{done_remotely['try_number']}"
    )
    params = {"map_index": done_remotely["map_index"], "full_content": "true"}
    served = json.dumps(admin.request("GET", path, params=params))
    assert "s3://" in served and "/logs/" in served, served[:2000]
