"""Errors and records that mails and the monitor show name data files relative to the data
root, never by the server's paths (a fixture model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adclick import contract, steps, storage
from adclick.errors import DataValidationError
from adclick_airflow.trigger_conf import ConfError, resolve_dataset
from testkit import fixture_models


def iris() -> contract.ModelSpec:
    return contract.load_module(fixture_models.module("iris"))


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "srv" / "data"
    (root / "team").mkdir(parents=True)
    return root


def test_a_bad_file_is_named_relative_to_the_data_root(data_root: Path, tmp_path: Path) -> None:
    bad = data_root / "team" / "iris.csv"
    bad.write_text("sepal length (cm),species\n1,setosa\n")
    with pytest.raises(DataValidationError) as caught:
        steps.ingest_csv(bad, tmp_path, iris(), root=data_root)
    message = str(caught.value)
    assert message.startswith("team/iris.csv: "), message
    assert str(tmp_path) not in message


def test_a_missing_file_is_named_relative_to_the_data_root(data_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"^team/none\.csv: no such file$") as caught:
        steps.ingest_csv(data_root / "team" / "none.csv", tmp_path, iris(), root=data_root)
    assert str(tmp_path) not in str(caught.value)


def test_a_file_outside_the_data_root_names_no_server_path(data_root: Path, tmp_path: Path) -> None:
    outside = fixture_models.export_csv("iris", tmp_path)
    with pytest.raises(DataValidationError) as caught:
        steps.ingest_csv(outside, tmp_path / "work", iris(), root=data_root)
    assert str(caught.value) == "iris.csv: is outside the data root"
    with pytest.raises(ConfError) as refused:
        resolve_dataset("../../iris.csv", data_root)
    assert str(tmp_path) not in str(refused.value)


def test_the_recorded_source_and_later_errors_are_relative(data_root: Path, tmp_path: Path) -> None:
    """The run's record (shown in results, mails and pages) and the checks after
    data_preprocessing, which name the file from it."""
    tumours = contract.load_module(fixture_models.module("tumours"))
    data = fixture_models.export_csv("tumours", data_root / "team")
    frame = data.read_text().replace(",B\n", ",benign\n", 1)
    data.write_text(frame)
    record = steps.ingest_csv(data, tmp_path, tumours, root=data_root)
    assert record["source"] == "team/tumours.csv"
    with pytest.raises(DataValidationError, match=r"^team/tumours\.csv: column 'diagnosis'"):
        steps.preprocess(tmp_path, tumours)


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/srv/data/a/b.csv", "a/b.csv"),
        ("/srv/other/b.csv", "b.csv"),
        ("s3://bucket/data/a/b.csv", "b.csv"),
    ],
)
def test_relative_name(path: str, shown: str) -> None:
    assert storage.relative_name(path, Path("/srv/data")) == shown


def test_relative_name_in_an_object_store() -> None:
    root = storage.location("s3://bucket/prefix/data")
    assert storage.relative_name("s3://bucket/prefix/data/a/b.csv", root) == "a/b.csv"
    assert storage.relative_name("s3://bucket/elsewhere/b.csv", root) == "b.csv"
