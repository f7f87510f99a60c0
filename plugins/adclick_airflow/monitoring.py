"""What the monitor DAG reads: the training DAG's latest run and where the Flask service lives."""

from __future__ import annotations

import os

from adclick_airflow import settings
from adclick_contract import AIRFLOW_URL, MONITOR_USERNAME
from flask_launcher.services import FLASK_MONITOR, Service

RUN_FIELDS = ("dag_run_id", "state", "run_after", "start_date", "end_date", "run_type")


def flask_health_url(service: Service = FLASK_MONITOR) -> str:
    """Where the watchdog pings ``service`` (``<PREFIX>_HEALTH_URL``, else its default bind)."""
    return service.setting(os.environ, "HEALTH_URL") or f"http://{service.default_bind}/health"


def latest_training_run() -> dict:
    """The latest training run through REST API v2, with the monitor's read-only account.

    Uses the same client as the Flask service, so a broken account or URL shows up here too.
    """
    from airflow_rest import DEFAULT_TIMEOUT_S, AirflowClient
    from airflow_rest.credentials import password_from

    client = AirflowClient(
        os.environ.get("MONITOR_AIRFLOW_URL", AIRFLOW_URL),
        os.environ.get("MONITOR_AIRFLOW_USERNAME", MONITOR_USERNAME),
        password_from(os.environ, "MONITOR_AIRFLOW_PASSWORD"),
        timeout=float(os.environ.get("MONITOR_AIRFLOW_TIMEOUT", DEFAULT_TIMEOUT_S)),
    )
    run = client.latest_run(settings.TRAINING_DAG_ID)
    if run is None:
        return {"dag_id": settings.TRAINING_DAG_ID, "state": None, "message": "no runs yet"}
    return {"dag_id": settings.TRAINING_DAG_ID, **{k: run.get(k) for k in RUN_FIELDS}}
