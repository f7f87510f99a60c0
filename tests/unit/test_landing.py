"""New CSV files in a data folder: which are reported (new bytes, a model's columns, settled),
which never are (seen bytes, other columns, links, hidden or nested files), the ledger that
remembers across restarts, and the triggerer's watcher that turns them into events."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from airflow.sdk import Asset

from adclick import contract, landing
from adclick_airflow import environment, landings, settings
from testkit import fixture_models

IRIS = contract.load_module(fixture_models.module("iris"))
COLUMNS = landing.required_columns(IRIS.features, IRIS.target, landing.TRAINING, preprocessed=False)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    fixture_models.export_csv("iris", folder)
    return folder


def watch(data: Path, kind: str = landing.TRAINING) -> landing.LandingWatch:
    columns = landing.required_columns(IRIS.features, IRIS.target, kind, preprocessed=False)
    folder = data if kind == landing.TRAINING else data / "incoming"
    return landing.LandingWatch(folder, columns, kind, landing.Ledger(data.parent / "model", kind))


def rows(data: Path, count: int) -> pd.DataFrame:
    return pd.read_csv(data / "iris.csv").head(count)


def settled(seen: landing.LandingWatch) -> list[landing.Landed]:
    """Two looks: a local file is reported once it is unchanged between them."""
    first = seen.poll()
    return first + seen.poll()


def test_files_already_there_at_the_first_look_are_recorded_not_reported(data: Path) -> None:
    seen = watch(data)
    assert seen.poll() == [] and seen.ledger.exists()
    assert settled(seen) == []
    (entry,) = seen.ledger.load().values()
    assert entry["name"] == "iris.csv" and entry["sha256"] == landing.sha256(data / "iris.csv")


def test_a_new_csv_is_reported_once_settled_then_never_again(data: Path) -> None:
    seen = watch(data)
    seen.poll()
    rows(data, 120).to_csv(data / "fresh.csv", index=False)
    assert seen.poll() == [], "a file seen once may still be being written"
    (landed,) = seen.poll()
    assert (landed.name, landed.sha256) == ("fresh.csv", landing.sha256(data / "fresh.csv"))
    assert landed.size == (data / "fresh.csv").stat().st_size
    seen.commit([landed])
    assert settled(seen) == []
    assert settled(watch(data)) == [], "a restarted watch reads what was reported"


def test_a_file_still_growing_is_not_reported_until_it_stops(data: Path) -> None:
    seen = watch(data)
    seen.poll()
    frame = rows(data, 140)
    frame.head(10).to_csv(data / "growing.csv", index=False)
    seen.poll()
    frame.to_csv(data / "growing.csv", index=False)
    assert seen.poll() == []
    (landed,) = seen.poll()
    assert landed.sha256 == landing.sha256(data / "growing.csv")


def test_the_same_bytes_again_are_not_new_data_whatever_their_name(data: Path) -> None:
    seen = watch(data)
    seen.poll()
    (data / "copy.csv").write_bytes((data / "iris.csv").read_bytes())
    assert settled(seen) == []


def test_changed_bytes_under_a_known_name_are_new(data: Path) -> None:
    seen = watch(data)
    seen.poll()
    rows(data, 100).to_csv(data / "iris.csv", index=False)
    os.utime(data / "iris.csv", ns=(1, 1))  # even with a modification time from the past
    (landed,) = settled(seen)
    assert landed.name == "iris.csv" and landed.sha256 == landing.sha256(data / "iris.csv")


def test_files_that_are_not_this_models_are_never_reported(data: Path, tmp_path: Path) -> None:
    seen = watch(data)
    seen.poll()
    fixture_models.export_csv("diabetes", data)  # another model's columns
    rows(data, 90).drop(columns=[IRIS.target]).to_csv(data / "no-target.csv", index=False)
    rows(data, 80).to_csv(data / ".hidden.csv", index=False)
    rows(data, 70).to_csv(data / "notes.txt", index=False)
    (data / "nested").mkdir()
    rows(data, 60).to_csv(data / "nested" / "deep.csv", index=False)
    rows(data, 50).to_csv(tmp_path / "outside.csv", index=False)
    (data / "link.csv").symlink_to(tmp_path / "outside.csv")
    os.mkfifo(data / "pipe.csv")
    (data / "empty.csv").write_bytes(b"")
    assert settled(seen) == []


def test_a_batch_is_new_by_name_and_bytes_in_the_inbox(data: Path) -> None:
    inbox = data / "incoming"
    inbox.mkdir()
    seen = watch(data, landing.SCORING)
    seen.poll()
    batch = rows(data, 30).drop(columns=[IRIS.target])
    batch.to_csv(inbox / "monday.csv", index=False)
    (monday,) = settled(seen)
    seen.commit([monday])
    (inbox / "tuesday.csv").write_bytes((inbox / "monday.csv").read_bytes())
    (tuesday,) = settled(seen)
    assert (monday.name, tuesday.name) == ("monday.csv", "tuesday.csv")
    assert monday.sha256 == tuesday.sha256
    assert not (data.parent / "model" / landing.LEDGER_FILES[landing.TRAINING]).exists()


def test_the_latest_batch_is_the_newest_file_with_the_features(data: Path) -> None:
    inbox = data / "incoming"
    assert landing.latest(inbox, IRIS.features) is None
    inbox.mkdir()
    batch = rows(data, 20).drop(columns=[IRIS.target])
    for age, name in enumerate(("old.csv", "new.csv", "newest-other.csv")):
        frame = batch if name != "newest-other.csv" else batch.drop(columns=list(IRIS.features[:1]))
        frame.to_csv(inbox / name, index=False)
        moment = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=age)).timestamp()
        os.utime(inbox / name, (moment, moment))
    assert landing.latest(inbox, IRIS.features) == "new.csv"


def test_the_ledger_keeps_the_newest_entries(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(landing, "MAX_LEDGER_ENTRIES", 2)
    ledger = landing.Ledger(data.parent / "model", landing.TRAINING)
    for digest in ("a", "b", "c"):
        ledger.record([landing.Landed(f"{digest}.csv", digest, 1)], landing.TRAINING)
    assert sorted(ledger.load()) == ["b", "c"]


def test_a_model_with_preprocessing_needs_only_its_features_to_train() -> None:
    assert landing.required_columns(["a"], "y", landing.TRAINING, preprocessed=True) == ["a"]
    assert landing.required_columns(["a"], "y", landing.TRAINING, preprocessed=False) == [
        "a",
        "y",
    ]
    with pytest.raises(ValueError, match="kind"):
        landing.required_columns(["a"], "y", "other", preprocessed=False)


def test_the_watcher_fires_one_event_per_new_file_one_file_per_look(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADCLICK_DATA_DIR", str(data))
    monkeypatch.setenv("ADCLICK_MODEL_DIR", str(data.parent / "model"))
    trigger = landings.LandedFileTrigger("iris", landing.TRAINING, COLUMNS, interval=0.5)
    classpath, kwargs = trigger.serialize()
    assert classpath == landings.TRIGGER_PATH
    assert landings.LandedFileTrigger(**kwargs).serialize() == (classpath, kwargs)

    async def events() -> list[dict]:
        stream = trigger.run()
        fired = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.3)  # the baseline is taken
        rows(data, 110).to_csv(data / "a.csv", index=False)
        rows(data, 100).to_csv(data / "b.csv", index=False)
        first = await asyncio.wait_for(fired, timeout=10)
        second = asyncio.ensure_future(anext(stream))  # as the triggerer asks for more
        await asyncio.sleep(0.2)
        assert not second.done(), "one file per look"
        second = await asyncio.wait_for(second, timeout=10)
        third = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(1.5)
        assert not third.done(), "one event per file"
        third.cancel()
        return [first.payload, second.payload]

    first, second = asyncio.run(events())
    assert first == {
        "data_path": "a.csv",
        "sha256": landing.sha256(data / "a.csv"),
        "size": (data / "a.csv").stat().st_size,
    }
    assert second["data_path"] == "b.csv"
    ledger = landing.Ledger(data.parent / "model" / "iris", landing.TRAINING)
    recorded = {entry["name"] for entry in ledger.load().values()}
    assert recorded == {"iris.csv", "a.csv", "b.csv"}, "recorded once announced"


def event(extra: dict, minute: int) -> SimpleNamespace:
    return SimpleNamespace(extra=extra, timestamp=datetime(2026, 1, 1, 0, minute, tzinfo=UTC))


def test_a_run_reads_the_newest_landed_file_from_its_triggering_events() -> None:
    data, champion = Asset(name="iris_data"), Asset(name="iris_champion")
    events = {
        data: [
            event({"from_trigger": True, "payload": {"data_path": "b.csv"}}, 2),
            event({"from_trigger": True, "payload": {"data_path": "a.csv"}}, 1),
            event({"data_path": "posted.csv"}, 0),  # through the REST API
            event({}, 3),
        ],
        champion: [event({"version": "v1"}, 4)],
    }
    assert landings.landed_data_path(events, "iris") == "b.csv"
    assert landings.landed_data_path({data: [event({"data_path": "posted.csv"}, 0)]}, "iris") == (
        "posted.csv"
    )
    assert landings.landed_data_path({champion: events[champion]}, "iris") is None
    assert landings.landed_data_path(None, "iris") is None
    assert landings.triggered_by(events, "iris_champion")
    assert not landings.triggered_by({data: []}, "iris_champion")


def test_landing_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.watches_landings("adclick") and settings.watches_landings("iris")
    monkeypatch.setenv("ADCLICK_WATCH_LANDINGS", "false")
    monkeypatch.setenv("ADCLICK_IRIS_WATCH_LANDINGS", "no")
    assert not settings.watches_landings("adclick") and not settings.watches_landings("iris")
    monkeypatch.setenv("ADCLICK_IRIS_WATCH_LANDINGS", "perhaps")
    with pytest.raises(ValueError, match="ADCLICK_IRIS_WATCH_LANDINGS"):
        settings.watches_landings("iris")
    assert settings.landing_poll_s() == environment.LANDING_POLL_S.default
    monkeypatch.setenv(environment.LANDING_POLL_S.name, "2")
    assert settings.landing_poll_s() == 2
