"""The maintenance DAG's tasks: each applies one retention window and reports what it removed.

What expires is decided in :mod:`adclick.retention`; here the roots and windows are read from
the deployment's settings, and each report is logged in full and returned (XCom) in short.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from airflow.sdk import task

from adclick_airflow import settings

# How many removed names travel in the XCom summary; the task log lists all of them.
ITEMS_IN_SUMMARY = 50


def _report(what: str, removed) -> dict:
    summary = removed.as_dict()
    print(
        f"{what}: removed {summary['removed']} from {summary['root']}, "
        f"freed {summary['freed_bytes']} bytes, {len(summary['errors'])} error(s)"
    )
    for item in summary["items"]:
        print(f"  removed {item}")
    for error in summary["errors"]:
        print(f"  could not remove {error}")
    if removed.errors:
        raise RuntimeError(f"{what}: {len(removed.errors)} item(s) could not be removed")
    return {**summary, "items": summary["items"][:ITEMS_IN_SUMMARY]}


@task
def remove_old_run_dirs() -> dict:
    """Delete run working directories (`ADCLICK_ARTIFACT_DIR/<dag>/<run>/`) in which nothing
    changed for `ADCLICK_RETAIN_RUN_DIRS_DAYS`."""
    from adclick import retention

    window = settings.retention_windows().run_dirs
    removed = retention.remove_run_dirs(settings.artifact_dir(), datetime.now(UTC), window)
    return _report("run working directories", removed)


@task
def remove_old_model_versions() -> dict:
    """Delete model versions older than `ADCLICK_RETAIN_MODEL_VERSIONS_DAYS`, of every model
    in `dags/models/`: never the current one, never the `ADCLICK_KEEP_MODEL_VERSIONS` newest."""
    from adclick import retention

    windows = settings.retention_windows()
    models, _broken = settings.training_models()
    removed = retention.remove_models_versions(
        settings.model_dir(),
        [spec.name for spec in models],
        datetime.now(UTC),
        windows.model_versions,
        keep_last=windows.keep_model_versions,
    )
    return _report("model versions", removed)


@task
def remove_old_task_logs() -> dict:
    """Delete log files under Airflow's log folder not written for `ADCLICK_RETAIN_LOGS_DAYS`."""
    from airflow.sdk.configuration import conf

    from adclick import retention

    log_root = Path(conf.get("logging", "base_log_folder"))
    window = settings.retention_windows().logs
    return _report("log files", retention.remove_log_files(log_root, datetime.now(UTC), window))


@task
def clean_metadata_db() -> dict:
    """Purge metadata rows (runs, task instances, XComs, jobs, audit log, ...) older than
    `ADCLICK_RETAIN_METADATA_DAYS` with `airflow db clean`; skipped when the deployment gives
    no `ADCLICK_METADATA_DB_URL`."""
    from airflow.sdk.exceptions import AirflowSkipException

    from adclick import retention

    url = settings.metadata_db_url()
    if url is None:
        raise AirflowSkipException("ADCLICK_METADATA_DB_URL is not set: metadata rows are kept")
    argv = retention.db_clean_command(datetime.now(UTC), settings.retention_windows().metadata)
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
    env.pop("AIRFLOW__CORE__SQL_ALCHEMY_CONN", None)  # the task runner's deliberate dead end
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    print(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"`airflow {' '.join(argv)}` exited with code {result.returncode}")
    before = argv[argv.index("--clean-before-timestamp") + 1]
    return {"clean_before": before, "output": result.stdout.splitlines()[-ITEMS_IN_SUMMARY:]}
