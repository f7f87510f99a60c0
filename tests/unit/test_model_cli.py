"""`python -m adclick train --model` and `check-model` with the fixture models, in real
subprocesses: any module trains from the command line, with the exit codes of the ad-click one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adclick.registry import ModelRegistry
from testkit import fixture_models
from testkit.cli import adclick


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixture_models.export_all(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize(
    ("name", "metric", "expected"),
    [("iris", "f1_macro", "setosa"), ("diabetes", "rmse", None), ("tumours", "accuracy", "M")],
)
def test_each_fixture_model_trains_from_the_command_line(
    name: str, metric: str, expected: str | None, data: Path, tmp_path: Path
) -> None:
    done = adclick(
        "train",
        "--model",
        fixture_models.module(name),
        "--data",
        data / f"{name}.csv",
        "--model-dir",
        tmp_path / "model",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["model"] == name and summary["promoted"] is True
    assert summary["gate"]["metric"] == metric and summary[metric] == summary["metrics"][metric]
    current = ModelRegistry(tmp_path / "model").current()
    assert current["metadata"]["model"] == name
    if expected is not None:
        assert expected in summary["labels"]


def test_a_gate_on_an_error_metric_rejects_with_exit_3(data: Path, tmp_path: Path) -> None:
    args = ["--model", fixture_models.module("diabetes"), "--data", data / "diabetes.csv"]
    done = adclick("train", *args, "--model-dir", tmp_path / "m", "--gate", "rmse<=1")
    assert done.returncode == 3, done.stderr
    assert "rmse 5" in done.stderr and "does not meet the gate rmse <= 1" in done.stderr
    assert json.loads(done.stdout)["quality_gate"] == {
        "metric": "rmse",
        "max": 1.0,
        "passed": False,
    }
    assert ModelRegistry(tmp_path / "m").current() is None


def test_a_gate_on_a_metric_of_another_task_exits_2(data: Path, tmp_path: Path) -> None:
    args = ["--model", fixture_models.module("diabetes"), "--data", data / "diabetes.csv"]
    done = adclick("train", *args, "--model-dir", tmp_path / "m", "--gate", "accuracy>=0.9")
    assert done.returncode == 2
    assert "gate metric 'accuracy' is not a regression metric" in done.stderr


def test_a_grid_key_the_estimator_does_not_know_exits_2_naming_it(
    data: Path, tmp_path: Path
) -> None:
    args = ["--model", fixture_models.module("iris"), "--data", data / "iris.csv"]
    done = adclick("train", *args, "--model-dir", tmp_path / "m", "--grid", '[{"C": 1}]')
    assert done.returncode == 2
    assert "candidates[0]: unknown key 'C' (value 1) for model iris" in done.stderr
    assert "n_estimators" in done.stderr


@pytest.mark.parametrize("name", fixture_models.NAMES)
def test_check_model_says_ready(name: str, data: Path) -> None:
    done = adclick("check-model", fixture_models.module(name), "--data", data / f"{name}.csv")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ready"] is True and report["model"] == name


def test_check_model_names_what_is_wrong(data: Path, tmp_path: Path) -> None:
    broken = tmp_path / "churn.py"
    broken.write_text(fixture_models.module("iris").read_text().replace('TARGET = "species"', ""))
    done = adclick("check-model", broken, "--data", data / "iris.csv")
    assert done.returncode == 2 and done.stderr == f"error: {broken}: TARGET is not defined\n"

    wrong_labels = tmp_path / "irises.py"
    wrong_labels.write_text(
        fixture_models.module("iris").read_text().replace('"virginica"', '"virginia"')
    )
    done = adclick("check-model", wrong_labels, "--data", data / "iris.csv")
    assert done.returncode == 2
    assert "column 'species'" in done.stderr and "found 'virginica'" in done.stderr
    assert "must be one of 'setosa', 'versicolor', 'virginia'" in done.stderr


def test_train_compares_with_the_champion_of_the_model_dir(data: Path, tmp_path: Path) -> None:
    args = ["--model", fixture_models.module("diabetes"), "--data", data / "diabetes.csv"]
    args += ["--model-dir", tmp_path / "m"]
    first = json.loads(adclick("train", *args).stdout)

    done = adclick("train", *args, "--grid", '[{"alpha": 1000}]')

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["promoted"] is False and summary["quality_gate"]["passed"] is True
    kept = summary["promotion"]
    assert kept["decision"] == "kept_champion" and kept["champion_version"] == first["version"]
    assert kept["champion_score"] == pytest.approx(first["rmse"])
    assert kept["challenger_score"] == summary["rmse"] > first["rmse"]
    assert kept["reason"].startswith(f"rmse {summary['rmse']:.4f} not <= champion's")
    assert ModelRegistry(tmp_path / "m").current()["version"] == first["version"]

    demanding = adclick("train", *args, "--min-improvement", "-1")
    assert demanding.returncode == 2 and "--min-improvement" in demanding.stderr
