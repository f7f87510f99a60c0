"""Any module's model in MLflow, against a real ``mlflow server``: its own registered model,
task, labels and module hash on the run, the module file logged, and ``pyfunc`` predicting
original labels from the raw CSV (text categories, gaps, integer columns as read)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from adclick import contract, steps
from adclick.registry import ModelRegistry
from adclick.tracking import CHAMPION_ALIAS, MODULE_ARTIFACT, Tracker, TrackingConfig
from embedded.mlflow_server import MlflowServer
from testkit import fixture_models

pytestmark = pytest.mark.integration


def tracked_run(server: MlflowServer, name: str, folder: Path) -> tuple[dict, Tracker, Path]:
    spec = contract.load_module(fixture_models.module(name))
    tracker = Tracker(TrackingConfig(server.url, experiment="models-tests", model_name=spec.name))
    data = fixture_models.export_csv(name, folder)
    result = steps.run(data, folder / "model", folder, spec, run_id=f"{name}-1", tracker=tracker)
    return result, tracker, data


@pytest.mark.parametrize(("name", "labels"), [("tumours", {"B", "M"}), ("diabetes", None)])
def test_pyfunc_predicts_original_labels_from_the_raw_csv(
    mlflow_server: MlflowServer, tmp_path: Path, name: str, labels: set | None
) -> None:
    result, tracker, data = tracked_run(mlflow_server, name, tmp_path)
    assert result["mlflow"]["model_name"] == name

    mlflow.set_tracking_uri(mlflow_server.url)
    model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION_ALIAS}")
    raw = pd.read_csv(data)
    predicted = model.predict(raw)
    assert len(predicted) == len(raw)
    if labels is not None:
        assert set(pd.Series(predicted).tolist()) == labels
    else:
        assert pd.api.types.is_float_dtype(pd.Series(predicted))

    run = tracker.client.get_run(result["mlflow"]["run_id"])
    spec = contract.load_module(fixture_models.module(name))
    assert run.data.tags["model_task"] == spec.task
    assert json.loads(run.data.tags["model_labels"]) == result["labels"]
    assert run.data.tags["model_sha256"] == spec.sha256
    logged = Path(
        tracker.client.download_artifacts(run.info.run_id, MODULE_ARTIFACT, str(tmp_path))
    )
    assert (logged / f"{name}.py").read_bytes() == fixture_models.module(name).read_bytes()
    evaluation = {a.path for a in tracker.client.list_artifacts(run.info.run_id, "evaluation")}
    if labels is None:
        assert evaluation == set(), "a regression has no confusion matrix"
    else:
        assert "evaluation/confusion_matrix.json" in evaluation


def test_champion_alias_and_current_move_together_only_for_a_better_model(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    spec = contract.load_module(fixture_models.module("diabetes"))
    tracker = Tracker(
        TrackingConfig(mlflow_server.url, experiment="promotion-tests", model_name="challengers")
    )
    data = fixture_models.export_csv("diabetes", tmp_path)
    registry = ModelRegistry(tmp_path / "model")

    def train(run: str, grid: list[dict]) -> dict:
        workdir = tmp_path / run
        workdir.mkdir()
        return steps.run(
            data, registry.model_dir, workdir, spec, run_id=run, tracker=tracker, candidates=grid
        )

    def champion() -> str:
        return tracker.client.get_model_version_by_alias("challengers", CHAMPION_ALIAS).version

    weak = train("weak", [{"alpha": 1000.0}])
    better = train("better", [{"alpha": 1.0}])
    assert better["promotion"]["decision"] == "promoted"
    assert better["promotion"]["champion_mlflow_version"] == weak["mlflow"]["model_version"]
    assert champion() == better["mlflow"]["model_version"]
    assert registry.current()["version"] == better["version"]

    kept = train("worse", [{"alpha": 1000.0}])

    assert kept["promoted"] is False and kept["promotion"]["decision"] == "kept_champion"
    assert champion() == better["mlflow"]["model_version"]
    assert registry.current()["version"] == better["version"]
    version = tracker.client.get_model_version("challengers", kept["mlflow"]["model_version"])
    assert version.tags["quality_gate"] == "passed"
    assert version.tags["promotion"] == "kept_champion"
    run = tracker.client.get_run(kept["mlflow"]["run_id"])
    assert run.data.tags["promotion"] == "kept_champion"
    assert run.data.tags["champion_model_version"] == better["mlflow"]["model_version"]
    assert run.data.tags["champion_version"] == better["version"]
    assert run.data.metrics["champion_rmse"] == pytest.approx(better["rmse"])
    assert run.data.metrics["rmse"] == pytest.approx(kept["rmse"])


def test_the_logged_model_is_skops_with_its_types_trusted_by_name(
    mlflow_server: MlflowServer, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    """No pickle where the model allows it, so no warning about one on the command line's
    stderr; the file names one type beyond skops' own trusted ones, trusted by name."""
    result, _, data = tracked_run(mlflow_server, "iris", tmp_path)
    assert "pickle or cloudpickle" not in capfd.readouterr().err
    mlflow.set_tracking_uri(mlflow_server.url)
    uri = f"models:/iris/{result['mlflow']['model_version']}"
    flavor = mlflow.models.get_model_info(uri).flavors["sklearn"]
    assert flavor["serialization_format"] == "skops"
    assert flavor["skops_trusted_types"] == ["sklearn.tree._tree.Tree"]
    features = pd.read_csv(data)[list(contract.load_module(fixture_models.module("iris")).features)]
    assert set(mlflow.sklearn.load_model(uri).predict(features)) == {
        "setosa",
        "versicolor",
        "virginica",
    }
