"""
### Service watchdogs: the Flask monitor and the model service

Each brings its service back within seconds when it dies, without holding a worker slot
while it is up. **ad_click_flask_watchdog** keeps the Flask monitor up,
**model_server_watchdog** the model service (each model's champion over HTTP).

* `wait_for_<service>_down` starts directly in the **triggerer**: an async ping of the
  service's `/health` four times a second. It ends (as a success) after two misses in a row;
  until then no worker or executor slot is used.
* `relaunch_<service>` (re)starts the service through its launcher (`FLASK_LAUNCHER`,
  `MODEL_SERVER_LAUNCHER`: `process` in the embedded stack, `docker` in Compose); it is
  idempotent, so a false alarm costs nothing.
* `verify_<service>_health` fails the run loudly unless `/health` answers within 30 s.

The schedule is `@continuous`: as soon as a run ends the next one starts watching again.
Set `ADCLICK_WATCHDOG_SCHEDULE=none` (`ADCLICK_MODEL_SERVER_WATCHDOG_SCHEDULE=none`) to
switch one off (the five-minute check in **ad_click_monitor** still runs for the monitor).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, dag

from adclick_airflow import environment, settings
from adclick_airflow.flask_tasks import (
    relaunch_flask,
    relaunch_model_server,
    verify_flask_health,
    verify_model_server_health,
)
from adclick_airflow.watchdog import WaitForFlaskDown
from flask_launcher.services import FLASK_MONITOR, MODEL_SERVER, Service


def watchdog(
    dag_id: str,
    service: Service,
    name: str,
    schedule: environment.Variable,
    relaunch: Any,
    verify: Any,
) -> DAG:
    """The watchdog DAG of ``service``: wait in the triggerer (``wait_for_<name>_down``),
    then the ``relaunch`` and ``verify`` tasks of that service."""

    @dag(
        dag_id=dag_id,
        schedule=settings.schedule(schedule),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        doc_md=__doc__,
        tags=["adclick", "monitoring"],
        default_args={"owner": "ml-team", "retries": 0, "queue": settings.MAIN_HOST_QUEUE},
    )
    def keep_up():
        down = WaitForFlaskDown(
            task_id=f"wait_for_{name}_down",
            service=service.env_prefix,
            doc_md=f"Waits in the triggerer until the {service.title}'s `/health` stops answering.",
        )
        # Retries with backoff: a service that cannot start must not be relaunched in a tight
        # loop.
        relaunched = relaunch.override(
            retries=3,
            retry_delay=timedelta(seconds=10),
            retry_exponential_backoff=True,
            max_retry_delay=timedelta(minutes=5),
            execution_timeout=timedelta(minutes=2),
        )()
        down >> relaunched >> verify.override(execution_timeout=timedelta(minutes=2))()

    return keep_up()


ad_click_flask_watchdog = watchdog(
    settings.WATCHDOG_DAG_ID,
    FLASK_MONITOR,
    "flask",
    environment.WATCHDOG_SCHEDULE,
    relaunch_flask,
    verify_flask_health,
)
model_server_watchdog = watchdog(
    settings.MODEL_SERVER_WATCHDOG_DAG_ID,
    MODEL_SERVER,
    "model_server",
    environment.MODEL_SERVER_WATCHDOG_SCHEDULE,
    relaunch_model_server,
    verify_model_server_health,
)
