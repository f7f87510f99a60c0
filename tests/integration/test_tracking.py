"""MLflow tracking of the ad-click model as domain code, against a real ``mlflow server``
process (no Airflow): what a training run records, the registry and its ``champion`` alias,
retries, and MLflow down."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from adclick import cli, steps, tracking
from adclick.errors import QualityGateError, TrackingError
from adclick.registry import ModelRegistry
from adclick.tracking import (
    CHAMPION_ALIAS,
    DIGEST_CHARS,
    TAG_CANDIDATE,
    TAG_DAG_ID,
    TAG_GATE,
    TAG_RUN_ID,
    TAG_TRY,
    RunContext,
    Tracker,
    TrackingConfig,
)
from embedded.mlflow_server import MlflowServer
from testkit.datasets import MODELS, SAMPLE_CSV, adclick
from testkit.files import snapshot
from testkit.ports import free_port
from testkit.tracking import unreachable_tracker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model_name(request: pytest.FixtureRequest) -> str:
    """A registered model of this module's own, so other tests' versions do not interfere."""
    return f"adclick-{request.module.__name__.rsplit('.', 1)[-1]}"


@pytest.fixture(scope="module")
def tracker(mlflow_server: MlflowServer, model_name: str) -> Tracker:
    return Tracker(
        TrackingConfig(mlflow_server.url, experiment="adclick-tests", model_name=model_name)
    )


STRICT = {"metric": "accuracy", "min": 1.0}


def train(tmp_path: Path, tracker: Tracker | None, run_id: str, **kwargs) -> dict:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return steps.run(
        SAMPLE_CSV, tmp_path / "model", workdir, adclick(), run_id=run_id, tracker=tracker, **kwargs
    )


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory, tracker: Tracker) -> dict:
    return train(tmp_path_factory.mktemp("tracked"), tracker, "manual__tracked")


def test_a_run_records_params_metrics_dataset_and_evaluation(tracked: dict, tracker: Tracker):
    run = tracker.client.get_run(tracked["mlflow"]["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "manual__tracked"
    assert run.data.tags[TAG_RUN_ID] == "manual__tracked"
    assert run.data.tags[TAG_TRY] == "1"
    assert run.data.tags["data_hash"] == tracked["data_hash"]
    assert run.data.params["test_size"] == "0.3" and run.data.params["C"] == "1.0"
    assert run.data.params["min_accuracy"] == "0.9"
    assert run.data.params["gate_metric"] == "accuracy" and run.data.params["gate_min"] == "0.9"
    assert run.data.tags["model"] == "adclick" and run.data.tags["model_task"] == "binary"
    assert json.loads(run.data.tags["model_labels"]) == [0, 1]
    assert run.data.tags["model_sha256"] == adclick().sha256
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert run.data.metrics[name] == pytest.approx(tracked["metrics"][name])
    [dataset] = run.inputs.dataset_inputs
    assert dataset.dataset.name == "advertising.csv"
    assert dataset.dataset.digest == tracked["data_hash"][:DIGEST_CHARS]
    assert json.loads(dataset.dataset.profile)["num_rows"] == tracked["rows"]

    evaluation = Path(tracker.client.download_artifacts(run.info.run_id, "evaluation"))
    matrix = json.loads((evaluation / "confusion_matrix.json").read_text())
    assert matrix["matrix"] == tracked["metrics"]["confusion_matrix"]
    assert matrix["labels"] == [0, 1] and matrix["class_names"] == ["no click", "click"]
    roc = json.loads((evaluation / "roc_curve.json").read_text())
    assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1 and len(roc["fpr"]) == len(roc["tpr"])


def test_each_candidate_of_a_grid_is_a_child_run(tmp_path: Path, tracker: Tracker) -> None:
    grid = [{"C": 0.5}, {"C": 2.0}]
    # Rejected (the gate at 1.0), so the champion the other tests check stays where it is.
    with pytest.raises(QualityGateError) as caught:
        train(tmp_path, tracker, "manual__grid", candidates=grid, gate=STRICT)
    result = caught.value.result
    children = tracker.client.search_runs(
        [result["mlflow"]["experiment_id"]],
        f"tags.`mlflow.parentRunId` = '{result['mlflow']['run_id']}'",
    )
    by_index = {child.data.tags[TAG_CANDIDATE]: child for child in children}
    assert sorted(by_index) == ["0", "1"]
    for candidate in result["candidates"]:
        child = by_index[str(candidate["index"])]
        assert child.data.params["C"] == str(candidate["params"]["C"])
        assert child.data.metrics["accuracy"] == pytest.approx(candidate["metrics"]["accuracy"])


def test_a_single_candidate_is_the_run_itself(tracked: dict, tracker: Tracker) -> None:
    parent = tracker.client.get_run(tracked["mlflow"]["run_id"])
    children = tracker.client.search_runs(
        [tracked["mlflow"]["experiment_id"]], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert children == []
    assert parent.data.params["C"] == "1.0"
    assert parent.data.metrics["accuracy"] == pytest.approx(tracked["accuracy"])


def test_the_model_is_an_sklearn_model_with_signature_and_example(tracked: dict, tracker):
    version = tracker.client.get_model_version(
        tracker.config.model_name, tracked["mlflow"]["model_version"]
    )
    assert version.run_id == tracked["mlflow"]["run_id"]
    assert version.tags[TAG_GATE] == "passed"
    [output] = tracker.client.get_run(version.run_id).outputs.model_outputs
    logged = {m.key: m.value for m in tracker.client.get_logged_model(output.model_id).metrics}
    assert logged["accuracy"] == pytest.approx(tracked["metrics"]["accuracy"])
    assert logged["true_positives"] == tracked["metrics"]["confusion_matrix"][1][1]
    import mlflow

    path = Path(mlflow.artifacts.download_artifacts(f"models:/{version.name}/{version.version}"))
    spec = yaml.safe_load((path / "MLmodel").read_text())
    assert "sklearn" in spec["flavors"]
    inputs = [column["name"] for column in json.loads(spec["signature"]["inputs"])]
    assert inputs == [
        "Daily Time Spent on Site",
        "Age",
        "Area Income",
        "Daily Internet Usage",
        "Male",
    ]
    assert (path / spec["saved_input_example_info"]["artifact_path"]).is_file()
    loaded = mlflow.pyfunc.load_model(str(path))
    example = json.loads((path / spec["saved_input_example_info"]["artifact_path"]).read_text())
    assert len(loaded.predict(pd.DataFrame(**example))) == 5
    # The raw file as pandas reads it (integer Age and Male, extra columns) is accepted.
    predicted = loaded.predict(pd.read_csv(SAMPLE_CSV))
    assert set(predicted.tolist()) == {0, 1} and len(predicted) == 1000


def test_a_passing_model_is_champion_in_mlflow_and_current_in_the_model_dir(
    tracked: dict, tracker: Tracker
) -> None:
    champion = tracker.client.get_model_version_by_alias(tracker.config.model_name, CHAMPION_ALIAS)
    assert champion.version == tracked["mlflow"]["model_version"]
    current = ModelRegistry(Path(tracked["model_path"]).parents[2]).current()
    assert current["version"] == tracked["version"]
    assert current["metadata"]["mlflow"]["model_version"] == champion.version


def test_a_rejected_model_is_registered_and_tagged_but_the_alias_stays(
    tmp_path: Path, tracker: Tracker, tracked: dict
) -> None:
    name = tracker.config.model_name
    before = tracker.client.get_model_version_by_alias(name, CHAMPION_ALIAS).version
    with pytest.raises(QualityGateError) as caught:
        train(tmp_path, tracker, "manual__rejected", gate=STRICT)
    rejected = caught.value.result["mlflow"]
    assert rejected["passed"] is False and rejected["model_version"] != before
    version = tracker.client.get_model_version(name, rejected["model_version"])
    assert version.tags[TAG_GATE] == "rejected"
    assert tracker.client.get_model_version_by_alias(name, CHAMPION_ALIAS).version == before
    assert ModelRegistry(tmp_path / "model").current() is None


def test_a_retried_task_resumes_its_run_and_version(tmp_path: Path, tracker: Tracker) -> None:
    """A second try of the same training run adds no MLflow run, child run or model version."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    grid = [{"C": 0.5}, {"C": 2.0}]
    first = train(tmp_path, tracker, "manual__retried", candidates=grid)
    context = RunContext("manual__retried", try_number=2)
    again = steps.register_model(
        workdir,
        tmp_path / "model",
        adclick(),
        adclick().gate,
        "manual__retried",
        candidates=len(grid),
        tracker=tracker,
        context=context,
    )
    assert again["mlflow"]["run_id"] == first["mlflow"]["run_id"]
    assert again["mlflow"]["model_version"] == first["mlflow"]["model_version"]
    experiment = [first["mlflow"]["experiment_id"]]
    runs = tracker.client.search_runs(experiment, f"tags.`{TAG_RUN_ID}` = 'manual__retried'")
    assert len(runs) == 1 and runs[0].data.tags[TAG_TRY] == "2"
    parent = f"tags.`mlflow.parentRunId` = '{runs[0].info.run_id}'"
    assert len(tracker.client.search_runs(experiment, parent)) == len(grid)
    assert TAG_DAG_ID not in runs[0].data.tags  # the command line has no DAG


def test_mlflow_down_fails_naming_it_and_leaves_the_model_dir_alone(
    tmp_path: Path, tracker: Tracker, tracked: dict
) -> None:
    model_dir = Path(tracked["model_path"]).parents[2]
    before = snapshot(model_dir)
    name = tracker.config.model_name
    champion = tracker.client.get_model_version_by_alias(name, CHAMPION_ALIAS).version
    workdir = Path(tracked["model_path"]).parents[2].parent / "work"
    with (
        unreachable_tracker(tracker.config.model_name) as (down, nowhere),
        pytest.raises(TrackingError, match=rf"MLflow at {nowhere}: cannot"),
    ):
        steps.register_model(
            workdir, model_dir, adclick(), adclick().gate, "manual__down", tracker=down
        )
    assert snapshot(model_dir) == before
    assert tracker.client.get_model_version_by_alias(name, CHAMPION_ALIAS).version == champion


def test_the_command_line_honours_mlflow_tracking_uri(
    tmp_path: Path, mlflow_server: MlflowServer, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    # The registered model is named as the module: a copy of its own keeps it apart.
    module = tmp_path / "adclick_cli.py"
    module.write_bytes((MODELS / "adclick.py").read_bytes())
    train = ["train", "--model", str(module), "--data", str(SAMPLE_CSV)]
    code = cli.main([*train, "--model-dir", str(tmp_path / "m")])
    assert code == cli.EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["mlflow"]["model_name"] == "adclick_cli"
    assert summary["mlflow"]["run_url"].startswith(f"{mlflow_server.url}/#/experiments/")

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    before = snapshot(tmp_path / "m")
    code = cli.main([*train, "--model-dir", str(tmp_path / "m")])
    assert code == cli.EXIT_ERROR
    assert "error: MLflow at http://127.0.0.1:" in capsys.readouterr().err
    assert snapshot(tmp_path / "m") == before


def test_a_model_dir_that_is_a_file_is_named_with_mlflow_on(
    tmp_path: Path, mlflow_server: MlflowServer, monkeypatch, capsys
) -> None:
    """The model directory is the problem, not MLflow: the error says so."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    not_a_dir = tmp_path / "model"
    not_a_dir.write_text("a file where the registry should be\n")
    code = cli.main(["train", "--data", str(SAMPLE_CSV), "--model-dir", str(not_a_dir)])
    assert code == cli.EXIT_ERROR
    assert f"error: model directory {not_a_dir}" in capsys.readouterr().err


def test_without_a_tracking_uri_tracking_is_off(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracker_from_env() is None
    code = cli.main(["train", "--data", str(SAMPLE_CSV), "--model-dir", str(tmp_path / "m")])
    assert code == cli.EXIT_OK
    assert "mlflow" not in json.loads(capsys.readouterr().out)
    metadata = ModelRegistry(tmp_path / "m").current()["metadata"]
    assert "mlflow" not in metadata


def test_the_server_is_one_process(mlflow_server: MlflowServer) -> None:
    """``mlflow server`` would stay resident beside the web server it starts (~200 MB)."""
    import psutil

    serving = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and str(mlflow_server.port) in p.info["cmdline"]
    ]
    assert len(serving) == 1, serving
    assert serving[0][1:3] == ["-m", "uvicorn"], serving
