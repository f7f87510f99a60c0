"""Batch scoring with the fixture models: `python -m adclick score` in real subprocesses, and
the scoring steps: a CSV scored with the champion's version and labels, bad input refused
naming the row with nothing written, chunks giving the rows one pass gives, a model file
changed behind the registry never loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from adclick import scoring
from adclick.errors import ArtifactError, DataValidationError, ModelNotFoundError
from adclick.registry import ModelRegistry
from testkit import fixture_models
from testkit.cli import adclick


def train(name: str, data: Path, model_dir: Path) -> None:
    module, csv = fixture_models.module(name), data / f"{name}.csv"
    done = adclick("train", "--model", module, "--data", csv, "--model-dir", model_dir)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixture_models.export_all(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def iris(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry whose champion is the iris fixture model."""
    model_dir = tmp_path_factory.mktemp("iris") / "model"
    train("iris", data, model_dir)
    return model_dir


def batch(data: Path, name: str, folder: Path) -> Path:
    """The model's CSV without its target column, as a batch to score arrives."""
    frame = pd.read_csv(data / f"{name}.csv")
    target = {"iris": "species", "tumours": "diagnosis", "diabetes": "progression"}[name]
    path = folder / f"{name}-batch.csv"
    frame.drop(columns=[target]).to_csv(path, index=False)
    return path


def test_the_command_scores_a_csv_with_the_champions_version_and_labels(
    iris: Path, data: Path, tmp_path: Path
) -> None:
    source = batch(data, "iris", tmp_path)
    out = tmp_path / "out" / "scored.parquet"

    done = adclick("score", "--model-dir", iris, "--data", source, "--output", out)

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    version = ModelRegistry(iris).current()["version"]
    assert summary["model"] == "iris" and summary["model_version"] == version
    assert summary["rows"] == 150
    scored = pd.read_parquet(out)
    assert list(scored.columns[:4]) == list(pd.read_csv(source).columns)
    assert set(scored["prediction"]) <= {"setosa", "versicolor", "virginica"}
    assert (scored["prediction"] == pd.read_csv(data / "iris.csv")["species"]).mean() > 0.9
    probabilities = scored[[f"probability_{c}" for c in ("setosa", "versicolor", "virginica")]]
    assert probabilities.sum(axis=1).round(6).eq(1).all()
    assert set(scored["model_version"]) == {version}
    pd.testing.assert_frame_equal(pd.read_csv(out.with_suffix(".csv")), scored)


def test_a_broken_csv_exits_2_naming_the_row_and_writes_nothing(
    iris: Path, data: Path, tmp_path: Path
) -> None:
    source = batch(data, "iris", tmp_path)
    lines = source.read_text().splitlines()
    lines[7] = lines[7].replace(lines[7].split(",")[1], "wide", 1)  # CSV line 8
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out" / "scored.parquet"

    done = adclick("score", "--model-dir", iris, "--data", source, "--output", out)

    assert done.returncode == 2, done.stderr
    assert f"{source}: column 'sepal width (cm)', line 8: not a number (found 'wide')" in (
        done.stderr
    )
    assert done.stdout == ""
    assert not (tmp_path / "out").exists()


def test_a_missing_feature_exits_2_naming_the_column(
    iris: Path, data: Path, tmp_path: Path
) -> None:
    source = batch(data, "iris", tmp_path)
    pd.read_csv(source).drop(columns=["petal width (cm)"]).to_csv(source, index=False)
    out = tmp_path / "scored.parquet"

    done = adclick("score", "--model-dir", iris, "--data", source, "--output", out)

    assert done.returncode == 2
    assert "missing required column 'petal width (cm)' in the header" in done.stderr
    assert list(tmp_path.iterdir()) == [source]


def test_a_bad_row_in_a_later_chunk_leaves_no_file_not_even_a_temporary_one(
    iris: Path, data: Path, tmp_path: Path
) -> None:
    source = batch(data, "iris", tmp_path)
    frame = pd.read_csv(source).astype({"petal length (cm)": "object"})
    frame.loc[120, "petal length (cm)"] = "inf"
    frame.to_csv(source, index=False)
    out = tmp_path / "predictions" / "iris-batch" / "v.parquet"
    (tmp_path / "predictions").mkdir()
    champion = scoring.load_champion(iris)

    with pytest.raises(DataValidationError) as caught:
        scoring.score_csv(source, champion, out, chunk_rows=40)

    assert "column 'petal length (cm)', line 122: not a finite number" in str(caught.value)
    assert list((tmp_path / "predictions").iterdir()) == []


def test_chunked_scoring_gives_the_rows_of_one_pass(data: Path, tmp_path: Path) -> None:
    """The tumours model: text labels, a text column with gaps (a chunk of gaps only
    reads as numbers), gaps in numbers; 7 rows at a time against all at once."""
    model_dir = tmp_path / "model"
    train("tumours", data, model_dir)
    source = batch(data, "tumours", tmp_path)
    frame = pd.read_csv(source)
    frame.loc[:12, "clinic"] = None  # the first chunks hold no clinic at all
    frame.to_csv(source, index=False)
    champion = scoring.load_champion(model_dir)

    whole = scoring.score_csv(source, champion, tmp_path / "whole.parquet")
    chunked = scoring.score_csv(source, champion, tmp_path / "chunked.parquet", chunk_rows=7)

    assert whole["chunks"] == 1 and chunked["chunks"] == -(-len(frame) // 7)
    assert whole["rows"] == chunked["rows"] == len(frame)
    one, many = (pd.read_parquet(tmp_path / f"{n}.parquet") for n in ("whole", "chunked"))
    pd.testing.assert_frame_equal(one, many)
    assert set(one["prediction"]) == {"B", "M"}
    assert list(one.columns[-3:]) == ["probability_B", "probability_M", "model_version"]
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "whole.csv"), pd.read_csv(tmp_path / "chunked.csv")
    )


def test_a_regression_scores_numbers_without_probabilities(data: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    train("diabetes", data, model_dir)
    source = batch(data, "diabetes", tmp_path)
    out, _ = scoring.prediction_paths(tmp_path / "root", source, "v1")

    summary = scoring.score_csv(source, scoring.load_champion(model_dir), out)

    assert out == tmp_path / "root" / "predictions" / "diabetes-batch" / "v1.parquet"
    scored = pd.read_parquet(out)
    assert summary["rows"] == len(scored) == 442
    assert list(scored.columns[-2:]) == ["prediction", "model_version"]
    assert scored["prediction"].dtype.kind == "f"


def test_a_model_file_changed_behind_the_registry_is_never_loaded(
    iris: Path, data: Path, tmp_path: Path
) -> None:
    registry = ModelRegistry(iris)
    model_file = Path(registry.current()["path"])
    original = model_file.read_bytes()
    try:
        model_file.write_bytes(original + b"\0")
        with pytest.raises(ArtifactError, match="not loading it"):
            scoring.load_champion(iris)
        done = adclick(
            "score",
            "--model-dir",
            iris,
            "--data",
            batch(data, "iris", tmp_path),
            "--output",
            tmp_path / "x.parquet",
        )
        assert done.returncode == 1 and "SHA-256" in done.stderr
        assert not (tmp_path / "x.parquet").exists()
    finally:
        model_file.write_bytes(original)


def test_no_champion_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no current model"):
        scoring.load_champion(tmp_path / "empty")
