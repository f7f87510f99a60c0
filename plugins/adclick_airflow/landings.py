"""Runs on new data: the assets a landed CSV updates, the triggerer's watcher that updates them,
and what a run reads back from the event.

Each model has two assets, updated by a :class:`LandedFileTrigger` watching in the triggerer
(no worker slot, no DAG run while nothing lands): ``<model>_data`` for a CSV in the data root
that names the model's features and target (its training DAG runs on the time schedule **or**
on it), and ``<model>_batches`` for a CSV in the scoring inbox ``incoming/`` that names its
features (its scoring DAG runs on it, and on ``<model>_champion``). The event's extra holds
the trigger's payload, ``{"data_path": ...}`` or ``{"input": ...}`` and the file's SHA-256; an
event posted through the REST API may name the file at the top of its extra instead.
What is new is decided by :mod:`adclick.landing`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.sdk import Asset, AssetOrTimeSchedule, AssetWatcher, CronTriggerTimetable
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from adclick import contract, landing
from adclick_airflow import settings

TRIGGER_PATH = f"{__name__}.LandedFileTrigger"
# The key naming the landed file in an event's extra (and the param it overrides), by kind.
FILE_KEYS = {landing.TRAINING: "data_path", landing.SCORING: "input"}


class LandedFileTrigger(BaseEventTrigger):
    """Fires once for each new CSV naming ``columns`` at the top of the data root
    (``training``) or of the scoring inbox (``scoring``), with ``{<file key>: name,
    "sha256": ...}``; every ``interval`` seconds (None: ``ADCLICK_LANDING_POLL_S``)."""

    def __init__(
        self, model: str, kind: str, columns: list[str], interval: float | None = None
    ) -> None:
        super().__init__()
        self.model = model
        self.kind = kind
        self.columns = list(columns)
        self.interval = interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return TRIGGER_PATH, {
            "model": self.model,
            "kind": self.kind,
            "columns": self.columns,
            "interval": self.interval,
        }

    def watch(self) -> landing.LandingWatch:
        folder = settings.data_dir() if self.kind == landing.TRAINING else settings.scoring_inbox()
        ledger = landing.Ledger(settings.model_registry_dir(self.model), self.kind)
        return landing.LandingWatch(folder, self.columns, self.kind, ledger)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watch = self.watch()
        interval = self.interval or settings.landing_poll_s()
        key = FILE_KEYS[self.kind]
        self.log.info("Watching %s for %s files of %s", watch.folder, self.kind, self.model)
        while True:
            try:
                found = await asyncio.to_thread(watch.poll)
            except Exception as exc:  # a store down now may be back at the next look
                self.log.warning("Cannot look at %s: %s", watch.folder, exc)
                found = []
            # One file per look: events the scheduler has not yet turned into a run join the
            # same run, which reads only the newest; the rest follow at the next looks.
            for item in found[:1]:
                self.log.info("%s landed (%s) for %s", item.name, item.sha256, self.model)
                yield TriggerEvent({key: item.name, "sha256": item.sha256, "size": item.size})
                await asyncio.to_thread(watch.commit, [item])
            await asyncio.sleep(interval)


def landing_asset(spec: contract.ModelSpec, kind: str) -> Asset:
    """The model's asset for new files of ``kind``, watched unless the deployment said not."""
    if kind == landing.TRAINING:
        name = settings.landing_asset_name(spec.name)
    else:
        name = settings.batch_asset_name(spec.name)
    if not settings.watches_landings(spec.name):
        return Asset(name=name)
    columns = landing.required_columns(
        spec.features, spec.target, kind, preprocessed=spec.data_preprocessing is not None
    )
    trigger = LandedFileTrigger(model=spec.name, kind=kind, columns=columns)
    return Asset(name=name, watchers=[AssetWatcher(name=f"{name}_watcher", trigger=trigger)])


def training_schedule(spec: contract.ModelSpec) -> Any:
    """The training DAG's schedule: its cron (``settings.training_schedule``) or a new CSV in
    the data root, whichever comes first; only the CSV when the cron is switched off."""
    data = landing_asset(spec, landing.TRAINING)
    cron = settings.training_schedule(spec.name)
    if cron is None:
        return [data]
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"), assets=[data])


def scoring_schedule(spec: contract.ModelSpec) -> Any:
    """The scoring DAG's schedule: a new batch in the inbox, or a new champion."""
    champion = Asset(name=settings.champion_asset_name(spec.name))
    return landing_asset(spec, landing.SCORING) | champion


def landed_file(events: Any, asset_name: str, key: str) -> Any:
    """The file the newest event of ``asset_name`` among a run's triggering events names
    under ``key`` (a watcher's payload, or the extra of one posted through the REST API);
    None when no such event names one."""
    if not events:
        return None
    newest = None
    for asset in events:
        if getattr(asset, "name", None) != asset_name:
            continue
        for event in events[asset]:
            extra = event.extra or {}
            payload = extra.get("payload") if extra.get("from_trigger") else extra
            value = payload.get(key) if isinstance(payload, Mapping) else None
            if value is not None and (newest is None or event.timestamp >= newest[0]):
                newest = (event.timestamp, value)
    return newest[1] if newest else None


def triggered_by(events: Any, asset_name: str) -> bool:
    """Whether ``asset_name`` is among a run's triggering assets."""
    return any(getattr(asset, "name", None) == asset_name for asset in events or ())


def landed_data_path(events: Any, model_name: str) -> Any:
    """The CSV a training run started by new data trains on (None: the conf's or default)."""
    return landed_file(events, settings.landing_asset_name(model_name), FILE_KEYS[landing.TRAINING])


def landed_batch(events: Any, model_name: str) -> Any:
    """The batch a scoring run started by a new file in the inbox scores, if any."""
    return landed_file(events, settings.batch_asset_name(model_name), FILE_KEYS[landing.SCORING])


def newest_batch(inbox: Any, spec: contract.ModelSpec) -> str | None:
    """The newest CSV in the scoring inbox with the model's features: what a new champion
    scores again."""
    return landing.latest(inbox, spec.features)
