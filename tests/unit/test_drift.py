"""Drift reports with the fixture models: every trained version keeps a bounded sample of its
training features; a batch like the training data shows no drift, a shifted one drifts in the
shifted columns; a large batch is compared through a stated sample; bad input and a version
without a sample are clear errors that write nothing."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adclick import drift, scoring
from adclick.errors import ConfigError, DataValidationError
from adclick.registry import REFERENCE_FILE, ModelRegistry
from testkit import fixture_models
from testkit.cli import adclick

TARGETS = {"iris": "species", "diabetes": "progression"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A registry per fixture model, each with its champion trained by the command line."""
    root = tmp_path_factory.mktemp("drift")
    data = fixture_models.export_all(root)
    registries = {}
    for name in TARGETS:
        model_dir = root / name / "model"
        done = adclick(
            "train",
            "--model",
            fixture_models.module(name),
            "--data",
            data / f"{name}.csv",
            "--model-dir",
            model_dir,
        )
        assert done.returncode == 0, done.stderr
        registries[name] = model_dir
    return registries


def scored_batch(model_dir: Path, name: str, folder: Path, shift: dict[str, float]) -> Path:
    """The model's rows without the target, the ``shift`` columns moved by that many standard
    deviations, scored by its champion; the predictions file."""
    rows = pd.read_csv(folder.parent / f"{name}.csv").drop(columns=[TARGETS[name]])
    for column, by in shift.items():
        rows[column] = rows[column] + by * rows[column].std()
    source = folder / f"{name}-batch.csv"
    rows.to_csv(source, index=False)
    champion = scoring.load_champion(model_dir)
    parquet, csv = scoring.prediction_paths(folder, source, champion.version)
    scoring.score_csv(source, champion, parquet, csv)
    return parquet


def test_each_version_keeps_a_bounded_sample_of_its_training_features(
    trained: dict[str, Path],
) -> None:
    for name, model_dir in trained.items():
        registry = ModelRegistry(model_dir)
        current = registry.current()
        sample = pd.read_parquet(
            io.BytesIO(registry.version_file(current["version"], REFERENCE_FILE))
        )
        assert list(sample.columns) == current["metadata"]["features"]
        assert 0 < len(sample) <= drift.REFERENCE_ROWS
        assert TARGETS[name] not in sample.columns

    many = pd.DataFrame({"a": np.arange(20_000), "b": np.arange(20_000) * 2.0})
    kept = pd.read_parquet(io.BytesIO(drift.reference_sample(many, ["a"], rows=1_000)))
    assert list(kept.columns) == ["a"] and len(kept) == 1_000 and kept["a"].is_unique


@pytest.mark.parametrize("name", list(TARGETS))
def test_a_batch_like_the_training_data_has_not_drifted(
    trained: dict[str, Path], name: str
) -> None:
    folder = Path(trained[name]).parent.parent / f"same-{name}"
    folder.mkdir()
    predictions = scored_batch(trained[name], name, folder, {})
    version = ModelRegistry(trained[name]).current()["version"]

    summary = drift.report_batch(trained[name], predictions, version)

    assert summary["drift"] is False and summary["drifted_columns"] == []
    assert summary["share"] == 0 and not summary["sampled"]
    html, report = drift.report_paths(predictions)
    assert json.loads(report.read_text()) == summary
    assert html.stat().st_size > 10_000 and html.name == f"{version}.drift.html"


def test_shifted_columns_drift_and_only_they(trained: dict[str, Path]) -> None:
    model_dir = trained["diabetes"]
    folder = model_dir.parent.parent / "shifted"
    folder.mkdir()
    shifted = ["bmi", "bp", "s1", "s2", "s3", "s4"]
    predictions = scored_batch(model_dir, "diabetes", folder, dict.fromkeys(shifted, 1.5))
    version = ModelRegistry(model_dir).current()["version"]

    summary = drift.report_batch(model_dir, predictions, version, threshold=0.5)

    assert sorted(summary["drifted_columns"]) == sorted(shifted)
    assert summary["share"] == pytest.approx(6 / 10) and summary["drift"] is True
    assert summary["columns"]["age"]["drifted"] is False
    assert summary["columns"]["bmi"]["method"] and summary["columns"]["bmi"]["threshold"]
    stricter = drift.report_batch(model_dir, predictions, version, threshold=0.7)
    assert stricter["share"] == summary["share"] and stricter["drift"] is False


def test_a_large_batch_is_compared_through_a_stated_sample(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    model_dir = trained["iris"]
    version = ModelRegistry(model_dir).current()["version"]
    features = ModelRegistry(model_dir).current()["metadata"]["features"]
    rows = pd.read_csv(Path(model_dir).parent.parent / "iris.csv")[features]
    predictions = tmp_path / "big" / f"{version}.parquet"
    predictions.parent.mkdir()
    pd.concat([rows] * 20, ignore_index=True).to_parquet(predictions)

    summary = drift.report_batch(model_dir, predictions, version, sample_rows=1_000)

    assert summary["rows"] == 3_000 and summary["compared_rows"] == 1_000 and summary["sampled"]
    html = drift.report_paths(predictions)[0].read_text()
    assert "1000 sampled of 3000 rows" in html


def test_bad_input_is_a_clear_error_and_writes_nothing(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    model_dir = trained["iris"]
    version = ModelRegistry(model_dir).current()["version"]
    missing = tmp_path / "gone" / f"{version}.parquet"
    with pytest.raises(DataValidationError, match=r"gone/.*no such predictions file"):
        drift.report_batch(model_dir, missing, version)

    narrow = tmp_path / "narrow" / f"{version}.parquet"
    narrow.parent.mkdir()
    pd.DataFrame({"sepal length (cm)": [1.0, 2.0]}).to_parquet(narrow)
    with pytest.raises(DataValidationError, match="column 'sepal width \\(cm\\)'"):
        drift.report_batch(model_dir, narrow, version)

    for threshold in (0, 1.5, "half", float("nan"), True):
        with pytest.raises(ConfigError, match="drift_threshold must be a share"):
            drift.report_batch(model_dir, narrow, version, threshold=threshold)
    assert sorted(p.name for p in narrow.parent.iterdir()) == [narrow.name]


def test_a_version_without_a_sample_is_named(trained: dict[str, Path], tmp_path: Path) -> None:
    version = ModelRegistry(trained["iris"]).current()["version"]
    old = tmp_path / "old-registry"
    shutil.copytree(trained["iris"], old)
    (old / "versions" / version / REFERENCE_FILE).unlink()

    with pytest.raises(drift.NoReferenceError, match=f"version {version} has no {REFERENCE_FILE}"):
        drift.report_batch(old, tmp_path / "x.parquet", version)
