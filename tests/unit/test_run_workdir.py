"""Run working directories: one per run id, whatever the id holds, always inside the root."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from adclick_airflow import settings
from adclick_airflow.settings import path_component, run_workdir
from adclick_contract import TRAINING_DAG_ID


@pytest.fixture
def artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADCLICK_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    return settings.artifact_dir()


# Airflow's run-id pattern allows all of these.
TRICKY = ["..", ".", "a:b", "a+b", "a_b", "a%3Ab", "a/b", "../../etc", ".hidden", "~x", "é"]


def test_tricky_run_ids_get_distinct_directories_inside_the_root(artifacts: Path) -> None:
    dirs = [run_workdir(TRAINING_DAG_ID, run_id) for run_id in TRICKY]
    assert len(set(dirs)) == len(TRICKY)
    for directory in dirs:
        assert directory.parent == artifacts / TRAINING_DAG_ID
        assert directory.name not in (".", "..") and not directory.name.startswith(".")
        assert "/" not in directory.name


def test_ordinary_run_ids_stay_readable(artifacts: Path) -> None:
    run_id = "manual__2026-11-24T08:30:01.123456+00:00"
    assert path_component(run_id) == "manual__2026-11-24T08%3A30%3A01.123456%2B00%3A00"
    assert path_component("scheduled__2026-01-01") == "scheduled__2026-01-01"


def test_long_run_ids_are_cut_to_a_safe_length_and_stay_distinct() -> None:
    first, second = ":" * 250, ":" * 249 + "+"
    names = {path_component(first), path_component(second)}
    assert len(names) == 2 and all(len(name) <= 200 for name in names)
    assert path_component("a" * 200) == "a" * 200  # exactly at the limit: not cut


def test_random_run_ids_never_collide_or_escape(artifacts: Path) -> None:
    rnd = random.Random(7)
    alphabet = "ab.:+_-%/~ é"
    ids = {"".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 6))) for _ in range(5000)}
    dirs = {run_workdir("dag", run_id) for run_id in ids}
    assert len(dirs) == len(ids)
    assert all(
        d.parent == artifacts / "dag" and d.resolve().is_relative_to(artifacts) for d in dirs
    )


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        path_component("")
