"""The maintenance DAG's tasks: each applies one retention window and reports what it removed.

What expires is decided in :mod:`adclick.retention`; here the roots and windows are read from
the deployment's settings, and each report is logged in full and returned (XCom) in short.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, task
from airflow.triggers.base import (
    BaseTrigger,
    StartTriggerArgs,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)

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


CLEAN_TRIGGER_PATH = f"{__name__}.MetadataCleanTrigger"


class MetadataCleanTrigger(BaseTrigger):
    """Runs `airflow db clean` of rows older than `ADCLICK_RETAIN_METADATA_DAYS` in the
    triggerer, with the database URL the triggerer's deployment gives it
    (`ADCLICK_METADATA_DB_URL`): workers hold no database password. It takes no arguments,
    so a task that starts it can only ask for the deployment's own clean-up."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return CLEAN_TRIGGER_PATH, {}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from adclick import retention

        url = await asyncio.to_thread(settings.metadata_db_url)
        if url is None:
            self.log.warning("ADCLICK_METADATA_DB_URL is not set: metadata rows are kept")
            yield TaskSkippedEvent()
            return
        window = settings.retention_windows().metadata
        argv = retention.db_clean_command(datetime.now(UTC), window)
        env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
        for name in DEAD_ENDS:
            env.pop(name, None)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "airflow",
            *argv,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        lines = output.decode(errors="replace").splitlines()
        for line in lines:
            self.log.info("%s", line)
        if process.returncode != 0:
            self.log.error("`airflow %s` exited with code %s", " ".join(argv), process.returncode)
            yield TaskFailedEvent()
            return
        before = argv[argv.index("--clean-before-timestamp") + 1]
        report: dict[str, Any] = {"clean_before": before, "output": lines[-ITEMS_IN_SUMMARY:]}
        yield TaskSuccessEvent(xcoms={"return_value": report})


# The trigger runner's process settings that would keep `airflow db clean` off the database.
DEAD_ENDS = ("AIRFLOW__CORE__SQL_ALCHEMY_CONN", "_AIRFLOW_PROCESS_CONTEXT")


class CleanMetadataDb(BaseOperator):
    """Purges metadata rows (runs, task instances, XComs, jobs, audit log, ...) older than
    `ADCLICK_RETAIN_METADATA_DAYS` with `airflow db clean`, started directly in the triggerer
    (:class:`MetadataCleanTrigger`); skipped when the deployment gives it no
    `ADCLICK_METADATA_DB_URL`."""

    start_from_trigger = True
    start_trigger_args = StartTriggerArgs(
        trigger_cls=CLEAN_TRIGGER_PATH,
        trigger_kwargs={},
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )

    def execute(self, context: Any) -> None:  # only reached if the triggerer path is off
        self.defer(trigger=MetadataCleanTrigger(), method_name="execute_complete")

    def execute_complete(self, context: Any, event: Any = None) -> Any:
        return event


def clean_metadata_db() -> CleanMetadataDb:
    """The maintenance DAG's `clean_metadata_db` task."""
    return CleanMetadataDb(task_id="clean_metadata_db", doc_md=CleanMetadataDb.__doc__)
