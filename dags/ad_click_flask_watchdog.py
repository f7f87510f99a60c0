"""
### Flask monitor watchdog

Brings the Flask monitor back within seconds when it dies, without holding a worker slot
while it is up.

* `wait_for_flask_down` starts directly in the **triggerer**: an async ping of the service's
  `/health` four times a second. It ends (as a success) after two misses in a row; until then
  no worker or executor slot is used.
* `relaunch_flask` (re)starts the service through the configured launcher
  (`FLASK_LAUNCHER`: `process` in the embedded stack, `docker` in Compose); it is idempotent,
  so a false alarm costs nothing.
* `verify_flask_health` fails the run loudly unless `/health` answers within 30 s.

The schedule is `@continuous`: as soon as a run ends the next one starts watching again.
Set `ADCLICK_WATCHDOG_SCHEDULE=none` to switch it off (the five-minute check in
**ad_click_monitor** still runs).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag

from adclick_airflow import environment, settings
from adclick_airflow.flask_tasks import relaunch_flask, verify_flask_health
from adclick_airflow.watchdog import WaitForFlaskDown


@dag(
    dag_id=settings.WATCHDOG_DAG_ID,
    schedule=settings.schedule(environment.WATCHDOG_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["adclick", "monitoring"],
    default_args={"owner": "ml-team", "retries": 0, "queue": settings.MAIN_HOST_QUEUE},
)
def ad_click_flask_watchdog():
    down = WaitForFlaskDown(
        task_id="wait_for_flask_down",
        doc_md="Waits in the triggerer until the Flask monitor's `/health` stops answering.",
    )
    # Retries with backoff: a service that cannot start must not be relaunched in a tight loop.
    relaunch = relaunch_flask.override(
        retries=3,
        retry_delay=timedelta(seconds=10),
        retry_exponential_backoff=True,
        max_retry_delay=timedelta(minutes=5),
        execution_timeout=timedelta(minutes=2),
    )()
    down >> relaunch >> verify_flask_health.override(execution_timeout=timedelta(minutes=2))()


ad_click_flask_watchdog()
