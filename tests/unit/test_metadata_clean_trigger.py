"""The maintenance DAG's `airflow db clean`, run the way the triggerer runs it: it takes no
arguments a task could choose, cleans the database of the URL the triggerer's deployment
gives it, is skipped without one, and fails when the clean-up fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from airflow.triggers.base import TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent

from adclick_airflow.maintenance import (
    CLEAN_TRIGGER_PATH,
    CleanMetadataDb,
    MetadataCleanTrigger,
)
from testkit.ports import free_port


async def first_event(trigger: MetadataCleanTrigger, timeout: float):
    events = trigger.run()
    try:
        return await asyncio.wait_for(anext(events), timeout)
    finally:
        await events.aclose()


def test_it_takes_no_arguments_and_starts_in_the_triggerer() -> None:
    assert MetadataCleanTrigger().serialize() == (CLEAN_TRIGGER_PATH, {})
    assert CleanMetadataDb.start_from_trigger is True
    assert CleanMetadataDb.start_trigger_args.trigger_cls == CLEAN_TRIGGER_PATH
    assert CleanMetadataDb.start_trigger_args.trigger_kwargs == {}


def test_without_a_database_url_it_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADCLICK_METADATA_DB_URL", raising=False)
    monkeypatch.delenv("ADCLICK_METADATA_DB_URL_CMD", raising=False)
    event = asyncio.run(first_event(MetadataCleanTrigger(), timeout=30))
    assert isinstance(event, TaskSkippedEvent)


def test_it_cleans_the_database_it_is_given_and_returns_the_cutoff(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A database with none of Airflow's tables: nothing to purge, and `airflow db clean`
    says so table by table."""
    monkeypatch.setenv("ADCLICK_METADATA_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.delenv("ADCLICK_METADATA_DB_URL_CMD", raising=False)
    event = asyncio.run(first_event(MetadataCleanTrigger(), timeout=240))
    assert isinstance(event, TaskSuccessEvent)
    report = event.xcoms["return_value"]
    assert report["clean_before"] and any("not found" in line for line in report["output"])


def test_a_clean_up_that_fails_fails_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """No database answers there: `airflow db clean` exits non-zero."""
    monkeypatch.setenv("ADCLICK_METADATA_DB_URL", f"postgresql://nobody@127.0.0.1:{free_port()}/x")
    monkeypatch.delenv("ADCLICK_METADATA_DB_URL_CMD", raising=False)
    event = asyncio.run(first_event(MetadataCleanTrigger(), timeout=240))
    assert isinstance(event, TaskFailedEvent)
