"""`python -m adclick` in a real subprocess with the ad-click model (the default module): JSON
on stdout, exit codes 0/1/2/3, no tracebacks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from adclick.registry import ModelRegistry
from adclick.source import MAX_MB_VARIABLE
from testkit.cli import adclick
from testkit.datasets import BROKEN
from testkit.datasets import SAMPLE_CSV as SAMPLE
from testkit.files import snapshot
from testkit.special_files import KINDS, special_file


def assert_clean_failure(done: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: ")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for word in words:
        assert word in done.stderr


@pytest.fixture(scope="module")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    model_dir = tmp_path_factory.mktemp("cli") / "model"
    done = adclick("train", "--data", SAMPLE, "--model-dir", model_dir, "--run-id", "cli-test")
    assert done.returncode == 0, done.stderr
    return model_dir, json.loads(done.stdout)


def test_train_prints_a_summary_and_promotes(trained_model_dir: tuple[Path, dict]) -> None:
    model_dir, summary = trained_model_dir
    assert 0.93 <= summary["accuracy"] <= 0.97
    assert summary["accuracy"] == summary["metrics"]["accuracy"]
    assert summary["promoted"] is True and summary["run_id"] == "cli-test"
    current = ModelRegistry(model_dir).current()
    assert current["version"] == summary["version"] and current["path"] == summary["model_path"]


def test_bad_data_exits_2_and_leaves_the_model_dir_alone(
    trained_model_dir: tuple[Path, dict], tmp_path: Path
) -> None:
    model_dir, _ = trained_model_dir
    before = snapshot(model_dir)
    done = adclick("train", "--data", BROKEN / "text_in_numeric.csv", "--model-dir", model_dir)
    assert_clean_failure(done, 2, "text_in_numeric.csv", "column 'Age'", "line 8", "forty-two")
    assert done.stdout == "" and snapshot(model_dir) == before

    fresh = tmp_path / "never-created"
    assert_clean_failure(adclick("train", "--data", tmp_path, "--model-dir", fresh), 2, "directory")
    assert not fresh.exists()


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "symlink_loop", "long_name"])
def test_a_path_that_is_not_a_regular_file_exits_2_naming_it(kind: str, tmp_path: Path) -> None:
    """Each would block or crash a plain open(); the bound on the wait is the test's timeout."""
    path = special_file(kind, tmp_path)
    done = adclick("train", "--data", path, "--model-dir", tmp_path / "model")
    assert_clean_failure(done, 2, f"error: {path}: ", KINDS[kind])
    assert not (tmp_path / "model").exists()


def test_a_file_over_the_size_limit_exits_2_with_size_and_limit(tmp_path: Path) -> None:
    done = adclick(
        "train", "--data", SAMPLE, "--model-dir", tmp_path / "m", env={MAX_MB_VARIABLE: "0.05"}
    )
    assert_clean_failure(done, 2, str(SAMPLE), "MB, larger than the limit of 0.05 MB")
    done = adclick(
        "train", "--data", SAMPLE, "--model-dir", tmp_path / "m", env={MAX_MB_VARIABLE: "many"}
    )
    assert_clean_failure(done, 2, "ADCLICK_MAX_DATASET_MB must be a positive number")


def test_quality_gate_failure_exits_3_with_the_summary(
    trained_model_dir: tuple[Path, dict],
) -> None:
    model_dir, first = trained_model_dir
    before = snapshot(model_dir)
    done = adclick("train", "--data", SAMPLE, "--model-dir", model_dir, "--min-accuracy", "0.999")
    assert_clean_failure(done, 3, "does not meet the gate accuracy >= 0.999")
    summary = json.loads(done.stdout)
    assert summary["promoted"] is False and summary["accuracy"] < 0.999
    assert ModelRegistry(model_dir).current()["version"] == first["version"]
    assert {k: v for k, v in snapshot(model_dir).items() if k in before} == before


def test_unwritable_model_dir_exits_1_with_the_directory_named(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "model"
    not_a_dir.write_text("a file where the registry should be\n")
    done = adclick("train", "--data", SAMPLE, "--model-dir", not_a_dir)
    assert_clean_failure(done, 1, f"model directory {not_a_dir}")
    assert not_a_dir.read_text() == "a file where the registry should be\n"


def test_bad_arguments_exit_2() -> None:
    done = adclick("train", "--data", SAMPLE, "--model-dir", "x", "--test-size", "1.5")
    assert done.returncode == 2 and "--test-size" in done.stderr


def test_real_dataset_reaches_096_on_the_hold_out(real_dataset: Path, tmp_path: Path) -> None:
    done = adclick("train", "--data", real_dataset, "--model-dir", tmp_path / "model")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["accuracy"] >= 0.96 and summary["metrics"]["test_rows"] == 300
