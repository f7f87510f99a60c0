"""Watching and switching off the Flask watchdog DAG through the REST API."""

from __future__ import annotations

from adclick_airflow.settings import WATCHDOG_DAG_ID as WATCHDOG
from airflow_rest import AirflowClient
from testkit.tasks import task_states


def running_runs(client: AirflowClient) -> list[dict]:
    path = f"/api/v2/dags/{WATCHDOG}/dagRuns"
    return client.request("GET", path, params={"state": "running"})["dag_runs"]


def watchdog_waiting(client: AirflowClient) -> bool:
    """A watchdog run is waiting in the triggerer for the Flask monitor to go down."""
    return any(
        task_states(client, WATCHDOG, run["dag_run_id"]).get("wait_for_flask_down") == "deferred"
        for run in running_runs(client)
    )


def switch_off_watchdog(client: AirflowClient) -> None:
    """Pause the watchdog and end its waiting run, so only the monitor DAG acts."""
    client.set_paused(WATCHDOG, True)
    for run in running_runs(client):
        path = f"/api/v2/dags/{WATCHDOG}/dagRuns/{run['dag_run_id']}"
        client.request("PATCH", path, json={"state": "success"})
