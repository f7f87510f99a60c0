"""Making real runs of the training DAG on the embedded stack, for the monitor's tests."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from airflow_rest import TERMINAL_STATES, AirflowClient, AirflowUnreachable
from testkit.datasets import BROKEN
from testkit.waiting import wait_until

RUN_TIMEOUT_S = 300
T = TypeVar("T")


def started_run(stack, conf: dict | None = None) -> tuple[AirflowClient, str, float]:
    """Unpause and trigger the training DAG as admin: the client, the run id and the
    deadline (``RUN_TIMEOUT_S`` from now) to wait for it by."""
    admin = stack.client()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    patiently(lambda: admin.set_paused(TRAINING, False), deadline)
    run_id = f"manual__{datetime.now(UTC).isoformat()}"  # a repeated trigger finds its run
    patiently(lambda: admin.trigger(TRAINING, conf or {}, run_id=run_id), deadline)
    return admin, run_id, deadline


def finished_run(stack, conf: dict | None = None) -> dict:
    """Trigger the training DAG as admin and wait until the run succeeded or failed."""
    admin, run_id, deadline = started_run(stack, conf)
    return patiently(
        lambda: admin.wait_for_run(TRAINING, run_id, max(deadline - time.monotonic(), 1)),
        deadline,
    )


def patiently(call: Callable[[], T], deadline: float) -> T:
    """``call()``, again while the api-server does not answer: on a loaded machine it may be
    replacing a worker that missed its heartbeat, which takes it away for many seconds."""
    while True:
        try:
            return call()
        except AirflowUnreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def failing_conf(marker: str = "missing") -> dict:
    """A conf the DAG accepts but whose data file does not exist: load_data fails."""
    return {"data_path": f"{marker}-does-not-exist.csv"}


def broken_csv_run(stack, name: str = "text_in_numeric.csv") -> dict:
    """A finished run on one of the broken CSV files: it fails at load_data, saying why."""
    shutil.copy(BROKEN / name, stack.data_dir / name)
    return finished_run(stack, {"data_path": name})


@contextmanager
def queued_run(stack) -> Iterator[dict]:
    """A run that stays queued (its DAG is paused); deleted again afterwards."""
    admin = stack.client()
    admin.set_paused(TRAINING, True)
    run = admin.trigger(TRAINING, {})
    try:
        yield run
    finally:
        admin.request("DELETE", f"/api/v2/dags/{TRAINING}/dagRuns/{run['dag_run_id']}")
        admin.set_paused(TRAINING, False)


def delete_all_runs(admin: AirflowClient, dag_id: str, timeout: float = RUN_TIMEOUT_S) -> None:
    """Wait for the DAG's runs to finish, then delete them: its history starts empty."""

    def none_left() -> bool:
        runs = admin.runs(dag_id, limit=100)
        for run in runs:
            if run["state"] in TERMINAL_STATES:
                admin.request("DELETE", f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}")
        return not runs

    wait_until(none_left, timeout, f"{dag_id}'s runs to finish and be deleted", poll=0.5)


def unsuccessful(client: AirflowClient, dag_id: str, run_id: str) -> str:
    """Every task instance of the run that did not succeed, one per line: task[map index],
    state, try, host and the error its log records; for assertion messages."""
    lines = []
    for t in client.task_instances(dag_id, run_id):
        if t["state"] == "success":
            continue
        index = t.get("map_index", -1)
        name = t["task_id"] + (f"[{index}]" if index >= 0 else "")
        line = f"{name}: {t['state']} try {t['try_number']} on {t.get('hostname')!r}"
        if t["state"] == "failed":
            line += f" {client.task_error(dag_id, run_id, t['task_id'], t['try_number'], index)}"
        lines.append(line)
    return "\n".join(lines) or "every task instance succeeded"
