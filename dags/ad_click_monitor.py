"""
### Ad-click monitor

Keeps the Flask monitor service up and records what the training pipeline last did.

* `check_dag_status` reads the latest **ad_click_training** run through Airflow's REST API v2
  with the read-only monitor account, the same client the Flask service uses.
* `check_flask_health` pings the service's `/health`; only when it does not answer,
  `relaunch_flask` (re)starts it through the configured launcher (`FLASK_LAUNCHER`:
  `process` in the embedded stack, `docker` in Compose) and `verify_flask_health` fails the
  run loudly unless `/health` answers again within the timeout.

Runs after every training run (triggered by it) and every five minutes as a check.
Every task finishes in seconds: nothing here holds a worker slot while the service runs.
Recovery within seconds of a crash is the job of **ad_click_flask_watchdog**.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from adclick_airflow import environment, settings
from adclick_airflow.flask_tasks import check_flask_health, relaunch_flask, verify_flask_health


@dag(
    dag_id=settings.MONITOR_DAG_ID,
    schedule=settings.schedule(environment.MONITOR_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=4),
    doc_md=__doc__,
    tags=["adclick", "monitoring"],
    params={"source_run_id": None},
    # Every task reads or reaches what only the main host has (settings.MAIN_HOST_QUEUE).
    default_args={
        "owner": "ml-team",
        "retries": 0,
        "execution_timeout": timedelta(minutes=2),
        "queue": settings.MAIN_HOST_QUEUE,
    },
)
def ad_click_monitor():
    # Right after a start, on a busy machine, Airflow's API can take longer than one call
    # allows: the read is retried rather than shown as the stack's first failed run.
    @task(retries=3, retry_delay=timedelta(seconds=15))
    def check_dag_status() -> dict:
        """Latest training run as the monitor account sees it (state, run id, timings)."""
        from adclick_airflow.monitoring import latest_training_run

        return latest_training_run()

    check_dag_status()
    check_flask_health() >> relaunch_flask() >> verify_flask_health()


ad_click_monitor()
