"""What another user of the MLflow server plants is never adopted by a training run (a real
``mlflow server``, a fixture model): a run tagged with the next run's id, a version claiming
this run, an experiment of the same name with artifacts in a folder of their choosing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adclick import contract, steps
from adclick.errors import ArtifactError
from adclick.registry import ModelRegistry
from adclick.tracking import (
    CHAMPION_ALIAS,
    EXPERIMENT_RECORD,
    TAG_CANDIDATE,
    TAG_GATE,
    TAG_RUN_ID,
    RunContext,
    Tracker,
    TrackingConfig,
)
from adclick.workdir import MLFLOW_RECORD
from embedded.mlflow_server import MlflowServer
from testkit import fixture_models

pytestmark = pytest.mark.integration

SPEC_NAME = "iris"
NEXT_RUN = "scheduled__2026-12-07T00:00:00+00:00"


def spec() -> contract.ModelSpec:
    return contract.load_module(fixture_models.module(SPEC_NAME))


@pytest.fixture
def tracker(mlflow_server: MlflowServer, request: pytest.FixtureRequest) -> Tracker:
    """An experiment and a registered model of this test's own."""
    own = f"deputy-{request.node.name}".replace("[", "-").replace("]", "")
    return Tracker(TrackingConfig(mlflow_server.url, experiment=own, model_name=own))


def train(folder: Path, tracker: Tracker, run_id: str, **kwargs) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    data = fixture_models.export_csv(SPEC_NAME, folder)
    workdir = folder / "work"
    workdir.mkdir(exist_ok=True)
    return steps.run(
        data, folder / "model", workdir, spec(), run_id=run_id, tracker=tracker, **kwargs
    )


def retry(folder: Path, tracker: Tracker, run_id: str, **kwargs) -> dict:
    """load_model's second try of the run :func:`train` made in ``folder``."""
    return steps.register_model(
        folder / "work",
        folder / "model",
        spec(),
        spec().gate,
        run_id,
        tracker=tracker,
        context=RunContext(run_id, try_number=2),
        **kwargs,
    )


def plant_version(tracker: Tracker, run_id: str) -> str:
    """A version of the tracker's model whose source is the attacker's, linked to ``run_id``."""
    version = tracker.client.create_model_version(
        tracker.config.model_name, source=f"runs:/{run_id}/evil", run_id=run_id
    )
    return str(version.version)


def test_a_run_planted_with_the_next_run_id_is_not_adopted(
    tracker: Tracker, tmp_path: Path
) -> None:
    experiment = tracker.client.create_experiment(tracker.config.experiment)
    planted = tracker.client.create_run(experiment, tags={TAG_RUN_ID: NEXT_RUN}, run_name=NEXT_RUN)
    tracker.client.create_registered_model(tracker.config.model_name)
    evil = plant_version(tracker, planted.info.run_id)

    result = train(tmp_path, tracker, NEXT_RUN)

    mine = result["mlflow"]
    assert mine["run_id"] != planted.info.run_id
    assert mine["model_version"] != evil
    name = tracker.config.model_name
    champion = tracker.client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    assert champion.version == mine["model_version"]
    assert champion.source == f"models:/{mine['model_id']}"
    assert TAG_GATE not in tracker.client.get_model_version(name, evil).tags
    recorded = json.loads((tmp_path / "work" / MLFLOW_RECORD).read_text())
    assert recorded["run_id"] == mine["run_id"] and recorded["version"] == mine["model_version"]


def test_a_retry_resumes_the_version_it_recorded_not_a_planted_one(
    tracker: Tracker, tmp_path: Path
) -> None:
    """Between two tries another user registers a version naming this run: the retry tags
    and promotes the version the first try recorded."""
    first = train(tmp_path, tracker, "manual__retry")["mlflow"]
    evil = plant_version(tracker, first["run_id"])
    again = retry(tmp_path, tracker, "manual__retry")["mlflow"]
    assert (again["run_id"], again["model_version"]) == (first["run_id"], first["model_version"])
    name = tracker.config.model_name
    assert tracker.client.get_model_version_by_alias(name, CHAMPION_ALIAS).version != evil
    assert TAG_GATE not in tracker.client.get_model_version(name, evil).tags


def test_a_recorded_version_that_is_not_this_runs_model_is_refused(
    tracker: Tracker, tmp_path: Path
) -> None:
    """The run's record itself pointed at another version (whoever can write the artifacts
    store): neither its tag nor the alias move, and the current model stays."""
    first = train(tmp_path, tracker, "manual__edited")["mlflow"]
    evil = plant_version(tracker, first["run_id"])
    record = tmp_path / "work" / MLFLOW_RECORD
    record.write_text(json.dumps({**json.loads(record.read_text()), "version": evil}))
    before = ModelRegistry(tmp_path / "model").current()["version"]
    with pytest.raises(ArtifactError, match=rf"version {evil}: source runs:/.* is not models:/"):
        retry(tmp_path, tracker, "manual__edited")
    name = tracker.config.model_name
    assert tracker.client.get_model_version_by_alias(name, CHAMPION_ALIAS).version != evil
    assert TAG_GATE not in tracker.client.get_model_version(name, evil).tags
    assert ModelRegistry(tmp_path / "model").current()["version"] == before


def test_a_renamed_experiment_and_an_impostor_of_its_name_change_nothing(
    tracker: Tracker, tmp_path: Path
) -> None:
    first = train(tmp_path / "one", tracker, "manual__one")["mlflow"]
    own = first["experiment_id"]
    tracker.client.rename_experiment(own, f"{tracker.config.experiment}-renamed")
    chosen = tmp_path / "attacker"
    tracker.client.create_experiment(tracker.config.experiment, artifact_location=str(chosen))
    # The same model folder: it recorded the experiment when the stack first used it.
    second = tmp_path / "two"
    second.mkdir()
    (tmp_path / "one" / "model").rename(second / "model")
    result = train(second, tracker, "manual__two")["mlflow"]
    assert result["experiment_id"] == own
    assert not chosen.exists()


def test_an_experiment_whose_artifacts_the_server_does_not_serve_is_refused(
    tracker: Tracker, tmp_path: Path
) -> None:
    chosen = tmp_path / "attacker"
    tracker.client.create_experiment(tracker.config.experiment, artifact_location=str(chosen))
    with pytest.raises(ArtifactError, match="is not served by the tracking server"):
        train(tmp_path / "run", tracker, "manual__first")
    assert not chosen.exists()
    assert not (tmp_path / "run" / "model" / EXPERIMENT_RECORD).exists()


def test_child_runs_planted_under_this_run_do_not_stand_in_for_its_candidates(
    tracker: Tracker, tmp_path: Path
) -> None:
    """The first try stopped before its candidates' child runs were recorded; meanwhile
    another user tagged two runs as those children: the retry still logs its own."""
    grid = [{"n_estimators": 1}, {"n_estimators": 5}]
    first = train(tmp_path, tracker, "manual__children", candidates=grid)["mlflow"]
    record = tmp_path / "work" / MLFLOW_RECORD
    state = json.loads(record.read_text())
    record.write_text(json.dumps({k: v for k, v in state.items() if k != "candidates"}))
    experiment = [first["experiment_id"]]
    parent = f"tags.`mlflow.parentRunId` = '{first['run_id']}'"
    for run in tracker.client.search_runs(experiment, parent):
        tracker.client.delete_run(run.info.run_id)
    planted = {
        tracker.client.create_run(
            first["experiment_id"],
            tags={"mlflow.parentRunId": first["run_id"], TAG_CANDIDATE: str(index)},
        ).info.run_id
        for index in range(len(grid))
    }
    retry(tmp_path, tracker, "manual__children", candidates=len(grid))
    children = json.loads(record.read_text())["candidates"]
    assert set(children) == {"0", "1"} and not planted & set(children.values())
    logged = tracker.client.get_run(children["1"])
    assert logged.data.params["n_estimators"] == "5"
