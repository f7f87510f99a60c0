"""A model file is unpickled only when its bytes are the ones recorded when it was written: a
candidate swapped between build_model and load_model, and a current model tampered with under
the model directory, are refused and never run (fixture models)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import joblib
import pytest

from adclick import contract, steps
from adclick.integrity import ModelIntegrityError
from adclick.registry import CURRENT_FILE, ModelRegistry
from adclick.workdir import candidate_dir
from testkit import fixture_models

GRID = [{"n_estimators": 1, "max_depth": 1}, {"n_estimators": 25, "max_depth": 4}]
GATE = {"metric": "accuracy", "min": 0.5}
RAN = "ran.txt"


def iris() -> contract.ModelSpec:
    return contract.load_module(fixture_models.module("iris"))


class Payload:
    """What an attacker pickles: loading it writes a file, proving their code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "attacker"))


@pytest.fixture
def fitted(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    """An iris run's working directory with both candidates fitted, and the hashes their
    build_model returned."""
    spec = iris()
    data = fixture_models.export_csv("iris", tmp_path)
    workdir = tmp_path / "work"
    workdir.mkdir()
    steps.ingest_csv(data, workdir, spec)
    steps.preprocess(workdir, spec)
    steps.split_holdout(workdir, spec)
    results = [steps.fit_and_score(workdir, spec, candidate=c, index=i) for i, c in enumerate(GRID)]
    return workdir, {r["index"]: r[steps.FILE_SHA256] for r in results}


def register(workdir: Path, model_dir: Path, hashes: dict[int, str] | None) -> dict:
    return steps.register_model(
        workdir, model_dir, iris(), GATE, "run-1", candidates=len(GRID), candidate_hashes=hashes
    )


def test_each_candidate_returns_its_files_sha256(fitted) -> None:
    workdir, hashes = fitted
    for index, digest in hashes.items():
        model_file = candidate_dir(workdir, index) / steps.MODEL
        assert hashlib.sha256(model_file.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("record_too", [False, True])
def test_a_candidate_swapped_after_build_model_is_not_loaded(
    fitted, tmp_path: Path, record_too: bool
) -> None:
    """Whoever can write the artifacts store replaces the best candidate's file (and, the
    second time, the hash in its record too): load_model refuses it and never runs it."""
    workdir, hashes = fitted
    best = candidate_dir(workdir, 1)
    joblib.dump(Payload(tmp_path / RAN), best / steps.MODEL)
    if record_too:
        record = json.loads((best / "build_model.json").read_text())
        record[steps.FILE_SHA256] = hashlib.sha256((best / steps.MODEL).read_bytes()).hexdigest()
        (best / "build_model.json").write_text(json.dumps(record))
    with pytest.raises(ModelIntegrityError, match=r"candidates/1/model.joblib: SHA-256 \w+ is not"):
        register(workdir, tmp_path / "model", hashes)
    assert not (tmp_path / RAN).exists()
    assert ModelRegistry(tmp_path / "model").current() is None


def test_a_candidate_without_a_returned_hash_is_not_loaded(fitted, tmp_path: Path) -> None:
    workdir, hashes = fitted
    with pytest.raises(ModelIntegrityError, match="no SHA-256 recorded"):
        register(workdir, tmp_path / "model", {0: hashes[0]})


def test_current_records_the_model_files_sha256_and_loads_it(fitted, tmp_path: Path) -> None:
    workdir, hashes = fitted
    result = register(workdir, tmp_path / "model", hashes)
    assert result["model_file_sha256"] == hashes[1]
    pointer = json.loads((tmp_path / "model" / CURRENT_FILE).read_text())
    assert pointer["sha256"] == hashes[1]
    current, model = ModelRegistry(tmp_path / "model").load_current()
    assert current["version"] == result["version"]
    assert model.n_estimators == 25


def test_a_tampered_current_model_is_refused_before_it_runs(fitted, tmp_path: Path) -> None:
    workdir, hashes = fitted
    register(workdir, tmp_path / "model", hashes)
    registry = ModelRegistry(tmp_path / "model")
    joblib.dump(Payload(tmp_path / RAN), registry.current()["path"])
    with pytest.raises(ModelIntegrityError, match=f"is not {hashes[1]}, in {CURRENT_FILE}"):
        registry.load_current()
    assert not (tmp_path / RAN).exists()


def test_a_pointer_without_a_hash_is_refused(fitted, tmp_path: Path) -> None:
    workdir, hashes = fitted
    register(workdir, tmp_path / "model", hashes)
    current_file = tmp_path / "model" / CURRENT_FILE
    pointer = json.loads(current_file.read_text())
    del pointer["sha256"]
    current_file.write_text(json.dumps(pointer))
    with pytest.raises(ModelIntegrityError, match=f"no SHA-256 recorded in {CURRENT_FILE}"):
        ModelRegistry(tmp_path / "model").load_current()
