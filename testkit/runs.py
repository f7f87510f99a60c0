"""Making real runs of the training DAG on the embedded stack, for the monitor's tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from airflow_rest import TERMINAL_STATES, AirflowClient
from testkit.waiting import wait_until

RUN_TIMEOUT_S = 300


def finished_run(stack, conf: dict | None = None) -> dict:
    """Trigger the training DAG as admin and wait until the run succeeded or failed."""
    admin = stack.client()
    admin.set_paused(TRAINING, False)
    run = admin.trigger(TRAINING, conf or {})
    return admin.wait_for_run(TRAINING, run["dag_run_id"], timeout=RUN_TIMEOUT_S)


def failing_conf(marker: str = "missing") -> dict:
    """A conf the DAG accepts but whose data file does not exist: load_data fails."""
    return {"data_path": f"{marker}-does-not-exist.csv"}


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
