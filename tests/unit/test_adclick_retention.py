"""Retention: given a root, a clock and a window, exactly the expired items go, and never the
current model, the newest versions, or anything still being written.

Items are aged the way time ages them: file times moved back with ``os.utime``, a version's
recorded creation time moved back in its metadata.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adclick import retention
from adclick.contract import registry_dir
from adclick.errors import AdclickError
from adclick.registry import METADATA_FILE, ModelRegistry
from adclick_contract import TRAINING_DAG_ID
from testkit.files import snapshot

# Files made by a test are "now" on the real clock; older ones are aged relative to it.
NOW = datetime.now(UTC)
DAY = timedelta(days=1)


def age(path: Path, days: float) -> None:
    """Move the times of ``path`` and everything under it ``days`` before NOW."""
    stamp = (NOW - days * DAY).timestamp()
    for directory, _dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.utime(Path(directory) / name, (stamp, stamp), follow_symlinks=False)
        os.utime(directory, (stamp, stamp))
    if path.is_file():
        os.utime(path, (stamp, stamp))


def make_run_dir(root: Path, dag_id: str, run: str, days_old: float) -> Path:
    run_dir = root / dag_id / run
    run_dir.mkdir(parents=True)
    (run_dir / "raw.parquet").write_bytes(b"x" * 1000)
    (run_dir / "load_data.json").write_text("{}")
    age(run_dir, days_old)
    return run_dir


# -- run working directories ------------------------------------------------------------------
def test_only_run_dirs_untouched_for_longer_than_the_window_go(tmp_path: Path) -> None:
    old = make_run_dir(tmp_path, TRAINING_DAG_ID, "manual__old", 20)
    recent = make_run_dir(tmp_path, TRAINING_DAG_ID, "manual__recent", 3)
    other_dag_old = make_run_dir(tmp_path, "other_dag", "scheduled__old", 15)

    removed = retention.remove_run_dirs(tmp_path, NOW, 14 * DAY)

    assert not old.exists() and not other_dag_old.exists()
    assert recent.exists() and (recent / "raw.parquet").read_bytes() == b"x" * 1000
    assert sorted(removed.items) == ["ad_click_training/manual__old", "other_dag/scheduled__old"]
    assert removed.freed_bytes == 2 * 1002 and removed.errors == []


def test_a_run_dir_with_one_recent_file_is_still_in_use(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path, TRAINING_DAG_ID, "manual__retried", 30)
    (run_dir / "model.joblib").write_bytes(b"written by a retry today")
    age(run_dir / "model.joblib", 0.1)

    assert retention.expired_run_dirs(tmp_path, NOW, 14 * DAY) == []


def test_a_symlink_in_the_artifacts_root_is_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    make_run_dir(outside, "dag", "run", 100)
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "linked_dag").symlink_to(outside / "dag")

    assert retention.remove_run_dirs(root, NOW, 14 * DAY).items == []
    assert (outside / "dag" / "run" / "raw.parquet").exists()


def test_a_missing_artifacts_root_removes_nothing(tmp_path: Path) -> None:
    assert retention.remove_run_dirs(tmp_path / "absent", NOW, DAY).items == []


# -- model versions ---------------------------------------------------------------------------
def register(registry: ModelRegistry, tmp_path: Path, n: int, *, promote: bool) -> str:
    model = tmp_path / f"model-{n}.bin"
    model.write_bytes(f"model {n}".encode())
    return registry.register(model, {"accuracy": 0.9}, {"run_id": f"r{n}"}, promote=promote)[
        "version"
    ]


def backdate(registry: ModelRegistry, version: str, days_old: float) -> None:
    path = registry.versions_dir / version / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata["created_at"] = (NOW - days_old * DAY).isoformat()
    path.write_text(json.dumps(metadata))


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "model")


def test_old_rejected_and_superseded_versions_go_current_and_newest_stay(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    superseded = register(registry, tmp_path, 1, promote=True)
    rejected = register(registry, tmp_path, 2, promote=False)
    current = register(registry, tmp_path, 3, promote=True)
    newer_rejected = [register(registry, tmp_path, n, promote=False) for n in (4, 5)]
    for version in (superseded, rejected, current, *newer_rejected):
        backdate(registry, version, 60)
    current_files = snapshot(registry.versions_dir / current)
    pointer = registry.current_file.read_bytes()

    removed = retention.remove_model_versions(registry.model_dir, NOW, 30 * DAY, keep_last=2)

    assert sorted(removed.items) == sorted(f"versions/{v}" for v in (superseded, rejected))
    assert registry.versions() == sorted([current, *newer_rejected])
    assert snapshot(registry.versions_dir / current) == current_files
    assert registry.current_file.read_bytes() == pointer
    assert removed.freed_bytes > 0 and removed.errors == []


def test_every_models_registry_folder_is_swept(tmp_path: Path) -> None:
    """The default model's versions sit at the root, every other model's in ``<name>/``."""
    root = tmp_path / "model"
    registries = {name: ModelRegistry(registry_dir(root, name)) for name in ("adclick", "iris")}
    old = {}
    for name, registry in registries.items():
        (tmp_path / name).mkdir()
        old[name] = register(registry, tmp_path / name, 1, promote=False)
        register(registry, tmp_path / name, 2, promote=True)
        backdate(registry, old[name], 60)

    removed = retention.remove_models_versions(root, list(registries), NOW, 30 * DAY, 0)

    assert sorted(removed.items) == [f"iris/versions/{old['iris']}", f"versions/{old['adclick']}"]
    assert all(len(registry.versions()) == 1 for registry in registries.values())


def test_the_current_version_stays_even_when_it_is_the_oldest_and_keep_last_is_zero(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    current = register(registry, tmp_path, 1, promote=True)
    later = register(registry, tmp_path, 2, promote=False)
    backdate(registry, current, 400)
    backdate(registry, later, 400)

    retention.remove_model_versions(registry.model_dir, NOW, 30 * DAY, keep_last=0)

    assert registry.versions() == [current]
    assert registry.current()["version"] == current


def test_versions_within_the_window_stay(registry: ModelRegistry, tmp_path: Path) -> None:
    register(registry, tmp_path, 1, promote=True)
    young = register(registry, tmp_path, 2, promote=False)
    old = register(registry, tmp_path, 3, promote=False)
    backdate(registry, young, 29)
    backdate(registry, old, 31)

    assert retention.expired_model_versions(registry, NOW, 30 * DAY, keep_last=0) == [old]


def test_an_unreadable_current_pointer_deletes_no_version(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    versions = [register(registry, tmp_path, n, promote=True) for n in (1, 2)]
    for version in versions:
        backdate(registry, version, 100)
    registry.current_file.write_text("{not json")

    with pytest.raises(AdclickError, match="not removing any model version"):
        retention.remove_model_versions(registry.model_dir, NOW, 30 * DAY, keep_last=0)
    assert registry.versions() == versions


def test_old_leftovers_of_interrupted_writes_go(registry: ModelRegistry, tmp_path: Path) -> None:
    current = register(registry, tmp_path, 1, promote=True)
    stale = registry.versions_dir / ".tmp-crashed"
    stale.mkdir()
    (stale / "model.joblib").write_bytes(b"half")
    age(stale, 40)
    in_progress = registry.versions_dir / ".tmp-writing-now"
    in_progress.mkdir()

    removed = retention.remove_model_versions(registry.model_dir, NOW, 30 * DAY, keep_last=0)

    assert removed.items == ["versions/.tmp-crashed"]
    assert in_progress.exists() and registry.versions() == [current]


def test_an_empty_registry_removes_nothing(registry: ModelRegistry) -> None:
    assert retention.remove_model_versions(registry.model_dir, NOW, DAY, keep_last=0).items == []


# -- log files --------------------------------------------------------------------------------
def test_old_log_files_and_the_directories_they_leave_empty_go(tmp_path: Path) -> None:
    old_run = tmp_path / "dag_id=ad_click_training" / "run_id=manual__old" / "task_id=load_data"
    recent_run = tmp_path / "dag_id=ad_click_training" / "run_id=manual__new" / "task_id=load_data"
    for directory in (old_run, recent_run):
        directory.mkdir(parents=True)
        (directory / "attempt=1.log").write_text("log line\n")
    age(old_run / "attempt=1.log", 45)
    age(recent_run / "attempt=1.log", 2)
    fresh_empty = tmp_path / "dag_id=ad_click_monitor" / "run_id=starting"
    fresh_empty.mkdir(parents=True)
    live = tmp_path / "scheduler.log"
    live.write_text("appended all the time\n")

    removed = retention.remove_log_files(tmp_path, NOW, 30 * DAY)

    assert removed.items == [str(old_run.relative_to(tmp_path) / "attempt=1.log")]
    assert removed.freed_bytes == len("log line\n")
    assert not (tmp_path / "dag_id=ad_click_training" / "run_id=manual__old").exists()
    assert (recent_run / "attempt=1.log").read_text() == "log line\n"
    assert fresh_empty.is_dir() and live.exists()


def test_log_sweep_does_not_follow_symlinked_directories(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.log").write_text("keep")
    age(outside / "precious.log", 100)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "elsewhere").symlink_to(outside)

    retention.remove_log_files(logs, NOW, 30 * DAY)

    assert (outside / "precious.log").read_text() == "keep"


# -- metadata and windows ---------------------------------------------------------------------
def test_db_clean_purges_before_the_window_without_archive_and_fails_loudly() -> None:
    argv = retention.db_clean_command(NOW, 90 * DAY)
    assert argv[:2] == ["db", "clean"]
    before = argv[argv.index("--clean-before-timestamp") + 1]
    assert datetime.fromisoformat(before) == NOW - 90 * DAY
    assert {"--skip-archive", "--error-on-cleanup-failure", "--yes"} <= set(argv)


def test_windows_refuse_negative_values_and_naive_clocks() -> None:
    with pytest.raises(ValueError, match="logs"):
        retention.RetentionWindows(logs=-DAY)
    with pytest.raises(ValueError, match="keep_model_versions"):
        retention.RetentionWindows(keep_model_versions=0)
    with pytest.raises(ValueError, match="timezone"):
        retention.cutoff(datetime(2027, 1, 1), DAY)
