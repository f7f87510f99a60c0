"""A scoring batch's drift report recorded in MLflow as domain code, against a real
``mlflow server`` process (no Airflow), with the iris fixture model: a run in the experiment
its training runs went to, tagged as a scoring batch of the version that scored it, with the
share and each column's result as metrics and the report as artifacts; MLflow down, or a
report that cannot be read, is a clear error that leaves the predictions and the report as
they are."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from adclick import contract, drift, scoring, steps
from adclick.errors import ArtifactError, TrackingError
from adclick.tracking import (
    RUN_KIND_SCORING,
    TAG_DAG_ID,
    TAG_DRIFT,
    TAG_MODEL,
    TAG_MODEL_VERSION,
    TAG_RUN_ID,
    TAG_RUN_KIND,
    RunContext,
    Tracker,
    TrackingConfig,
)
from embedded.mlflow_server import MlflowServer
from testkit import fixture_models
from testkit.files import snapshot
from testkit.tracking import unreachable_tracker

pytestmark = pytest.mark.integration

SHIFTED = 2  # the first two measures are moved by three standard deviations
CONTEXT = RunContext(run_id="manual__batch", dag_id="iris_scoring", run_url="http://airflow/r")


@pytest.fixture(scope="module")
def tracker(mlflow_server: MlflowServer) -> Tracker:
    return Tracker(
        TrackingConfig(
            mlflow_server.url,
            experiment="iris-drift-tests",
            model_name="iris-drift-tests",
            ui_url=mlflow_server.url,
        )
    )


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, tracker: Tracker) -> dict:
    """The iris champion trained and tracked, a batch of its rows with two measures shifted
    scored by it, and that batch's drift report: ``{"trained", "report", "model_dir"}``."""
    root = tmp_path_factory.mktemp("drift-tracking")
    data = fixture_models.export_csv("iris", root)
    spec = contract.load_module(fixture_models.module("iris"))
    (root / "work").mkdir()
    model_dir = root / "model"
    trained = steps.run(data, model_dir, root / "work", spec, run_id="seed", tracker=tracker)
    rows = pd.read_csv(data).drop(columns=[spec.target])
    for column in spec.features[:SHIFTED]:
        rows[column] = rows[column] + 3 * rows[column].std()
    source = root / "batch.csv"
    rows.to_csv(source, index=False)
    champion = scoring.load_champion(model_dir)
    parquet, csv = scoring.prediction_paths(root / "data", source, champion.version)
    scoring.score_csv(source, champion, parquet, csv)
    report = drift.report_batch(model_dir, parquet, champion.version)
    return {"trained": trained, "report": report, "model_dir": model_dir}


def test_a_batch_is_a_run_of_the_models_experiment_with_its_drift(
    batch: dict, tracker: Tracker, tmp_path: Path
) -> None:
    report = batch["report"]

    tracked = tracker.record_drift(context=CONTEXT, report=report, registry_dir=batch["model_dir"])

    run = tracker.client.get_run(tracked.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == batch["trained"]["mlflow"]["experiment_id"]
    tags = run.data.tags
    assert tags[TAG_RUN_KIND] == RUN_KIND_SCORING and tags[TAG_MODEL] == "iris"
    assert tags[TAG_MODEL_VERSION] == report["model_version"] == batch["trained"]["version"]
    assert tags[TAG_RUN_ID] == "manual__batch" and tags[TAG_DAG_ID] == "iris_scoring"
    assert tags[TAG_DRIFT] == "true" and report["share"] == 0.5  # two of four columns
    metrics = run.data.metrics
    assert metrics["drift_share"] == 0.5
    for column, result in report["columns"].items():
        assert metrics[f"drifted.{column.replace('(', '_').replace(')', '_')}"] == (
            1.0 if result["drifted"] else 0.0
        )
    assert sum(v for k, v in metrics.items() if k.startswith("drifted.")) == SHIFTED
    assert len([k for k in metrics if k.startswith("drift_score.")]) == len(report["columns"])
    assert run.data.params["drift_threshold"] == "0.5"
    assert run.data.params["rows"] == "150"
    html = Path(report["html"])
    folder = Path(tracker.client.download_artifacts(tracked.run_id, "drift", str(tmp_path)))
    assert (folder / html.name).read_bytes() == html.read_bytes()
    assert (folder / Path(report["json"]).name).is_file()
    assert tracked.report_url == (
        f"{tracker.config.ui_url}/#/experiments/{run.info.experiment_id}/runs/"
        f"{tracked.run_id}/artifacts/drift/{html.name}"
    )


def test_mlflow_down_fails_naming_it_and_keeps_the_report(batch: dict, tracker: Tracker) -> None:
    folder = Path(batch["report"]["html"]).parent
    before = snapshot(folder)
    with (
        unreachable_tracker(tracker.config.model_name) as (down, nowhere),
        pytest.raises(TrackingError, match=rf"MLflow at {nowhere}: cannot"),
    ):
        down.record_drift(context=CONTEXT, report=batch["report"], registry_dir=batch["model_dir"])

    assert snapshot(folder) == before


def test_a_report_that_cannot_be_read_starts_no_run(
    batch: dict, tracker: Tracker, tmp_path: Path
) -> None:
    experiment = batch["trained"]["mlflow"]["experiment_id"]
    runs = len(tracker.client.search_runs([experiment]))
    gone = {**batch["report"], "html": str(tmp_path / "gone.drift.html")}

    with pytest.raises(ArtifactError, match=r"gone\.drift\.html: cannot read it"):
        tracker.record_drift(context=CONTEXT, report=gone, registry_dir=batch["model_dir"])

    assert len(tracker.client.search_runs([experiment])) == runs
