"""
### Ad-click maintenance

Keeps a long-running stack from filling its disk. Daily, each task applies one retention
window (days, set per deployment) and reports what it removed: every item in its log, a
summary (count, bytes freed, the first names) as its return value.

* `remove_old_run_dirs`: run working directories under `ADCLICK_ARTIFACT_DIR` in which
  nothing changed for `ADCLICK_RETAIN_RUN_DIRS_DAYS` (14).
* `remove_old_model_versions`: rejected and superseded model versions older than
  `ADCLICK_RETAIN_MODEL_VERSIONS_DAYS` (30); never the current one, and never the
  `ADCLICK_KEEP_MODEL_VERSIONS` (5) newest.
* `remove_old_task_logs`: files in Airflow's log folder not written for
  `ADCLICK_RETAIN_LOGS_DAYS` (30).
* `clean_metadata_db`: `airflow db clean` of rows older than `ADCLICK_RETAIN_METADATA_DAYS`
  (90), which keeps each DAG's latest scheduled run.

Set `ADCLICK_MAINTENANCE_SCHEDULE=none` to switch it off.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag

from adclick_airflow import environment, notify, settings
from adclick_airflow.maintenance import (
    clean_metadata_db,
    remove_old_model_versions,
    remove_old_run_dirs,
    remove_old_task_logs,
)


@dag(
    dag_id=settings.MAINTENANCE_DAG_ID,
    schedule=settings.schedule(environment.MAINTENANCE_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["adclick", "maintenance"],
    default_args={
        "owner": "ml-team",
        "retries": 1,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": notify.task_failed,
        # The log folder and the database URL it cleans are the main host's.
        "queue": settings.MAIN_HOST_QUEUE,
    },
)
def ad_click_maintenance():
    remove_old_run_dirs()
    remove_old_model_versions()
    remove_old_task_logs()
    clean_metadata_db()


ad_click_maintenance()
