"""Model files run no code when loaded wherever the model allows it: the fixture models
(a forest, a regression pipeline, a pipeline with imputers and a one-hot encoder) are saved
with skops and load with the types named in the file trusted, one by one; a file naming any
other type is refused before anything in it is built; a model skops cannot hold safely (a
function inside) is a pickle, loaded only behind its hash."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from adclick import contract, integrity, model, modelfile
from adclick.integrity import ModelIntegrityError
from adclick.modelfile import UntrustedModelError
from testkit import fixture_models


def shifted_log(values):
    """A team's own function inside a model (a FunctionTransformer's)."""
    return np.log1p(values)


def fitted(name: str, tmp_path: Path):
    spec = contract.load_module(fixture_models.module(name))
    frame = pd.read_csv(fixture_models.export_csv(name, tmp_path))
    frame = spec.data_preprocessing(frame) if spec.data_preprocessing else frame
    train, test = model.split(spec, frame, test_size=0.3, random_state=1)
    return spec, model.fit(spec, train), test


@pytest.mark.parametrize("name", fixture_models.NAMES)
def test_fixture_models_are_saved_with_skops_and_load_to_the_same_predictions(
    name: str, tmp_path: Path
) -> None:
    spec, estimator, test = fitted(name, tmp_path)
    data, file_format = modelfile.dumps(estimator)
    assert file_format == modelfile.SKOPS and modelfile.format_of(data) == modelfile.SKOPS
    loaded = modelfile.load(data, integrity.sha256(data), "model", "by the test")
    features = test[list(spec.features)]
    assert type(loaded) is type(estimator)
    np.testing.assert_array_equal(loaded.predict(features), estimator.predict(features))
    assert all(modelfile.trusted(t) for t in modelfile.skops_types(data))


def renamed_root(data: bytes, type_name: str) -> bytes:
    """``data`` with its top object said to be of type ``type_name`` (what an attacker who
    edits the archive would write)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    schema["__module__"], _, schema["__class__"] = type_name.rpartition(".")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            body = json.dumps(schema) if item.filename == "schema.json" else source.read(item)
            target.writestr(item, body)
    return out.getvalue()


@pytest.mark.parametrize("type_name", ["os.system", "subprocess.Popen", "builtins.eval"])
def test_a_skops_file_naming_an_untrusted_type_is_refused(tmp_path: Path, type_name: str) -> None:
    _, estimator, _ = fitted("diabetes", tmp_path)
    data, _ = modelfile.dumps(estimator)
    tampered = renamed_root(data, type_name)
    assert type_name in modelfile.skops_types(tampered)
    with pytest.raises(UntrustedModelError, match=type_name):
        modelfile.load(tampered, integrity.sha256(tampered), "model.joblib", "by the test")


def test_only_classes_of_trusted_libraries_are_trusted() -> None:
    assert modelfile.trusted("sklearn.tree._tree.Tree")
    assert modelfile.trusted("numpy.dtype")
    assert not modelfile.trusted("numpy.load")  # a function, not a class
    assert not modelfile.trusted("sklearn.nothing.Here")
    assert not modelfile.trusted("os.system")
    assert not modelfile.trusted("builtins.eval")


def test_a_model_holding_a_function_is_a_pickle_loaded_only_behind_its_hash(
    tmp_path: Path,
) -> None:
    _, estimator, _ = fitted("diabetes", tmp_path)
    piped = make_pipeline(FunctionTransformer(shifted_log), estimator.steps[-1][1])
    data, file_format = modelfile.dumps(piped)
    assert file_format == modelfile.PICKLE and modelfile.format_of(data) == modelfile.PICKLE
    assert modelfile.skops_trusted_types(piped) is None
    with pytest.raises(ModelIntegrityError):
        modelfile.load(data, "0" * 64, "model.joblib", "by the test")
    with pytest.raises(ModelIntegrityError):
        modelfile.load(data, None, "model.joblib", "by the test")
    assert type(modelfile.load(data, integrity.sha256(data), "m", "by the test")) is type(piped)
