"""One scoring DAG per model module, parsed by a real DagBag and run with `dag.test()` on a
fixture model: a batch in the inbox is scored with the champion's version and labels; a
broken one fails naming the row, mails it, and leaves no prediction file. Each batch gets a
drift report: none for rows like the training data, one alert mail (real SMTP) naming the
columns of a shifted batch, and with `retrain_on_drift` a run of the training DAG on it; with
MLflow configured (a real server), the batch's drift is a run in the model's experiment."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from airflow.dag_processing.dagbag import DagBag

from adclick import contract, steps
from adclick.registry import ModelRegistry
from adclick.tracking import Tracker, TrackingConfig
from adclick_airflow import settings
from embedded.mailcatcher import MailCatcher
from embedded.mlflow_server import MlflowServer
from embedded.stack import REPO_ROOT
from testkit import fixture_models

SCORING_TASKS = {  # task: its upstream tasks
    "locate_input": set(),
    "score_batch": {"locate_input"},
    "drift_report": {"score_batch"},
    "drifted": {"drift_report"},
    "mail_drift_alert": {"drifted", "drift_report"},
    "log_drift": {"drift_report"},
    "retrain_requested": {"drifted"},
    "trigger_training": {"retrain_requested"},
}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=REPO_ROOT / "dags")


@pytest.mark.parametrize("name", ["adclick", *fixture_models.NAMES])
def test_every_module_has_a_scoring_dag(dagbag: DagBag, name: str) -> None:
    dag = dagbag.dags["ad_click_scoring" if name == "adclick" else f"{name}_scoring"]
    assert {t.task_id: t.upstream_task_ids for t in dag.tasks} == SCORING_TASKS
    assert sorted(dag.tags) == sorted(["ml", "scoring", name])
    assert dag.doc_md and set(dag.params) == {"input", "drift_threshold", "retrain_on_drift"}
    assert dag.params["drift_threshold"] == 0.5 and dag.params["retrain_on_drift"] is False
    batches, champion = dag.timetable.asset_condition.objects  # either one starts a run
    assert (batches.name, champion.name) == (f"{name}_batches", f"{name}_champion")
    (watcher,) = batches.watchers
    assert watcher.trigger.serialize()[1]["columns"] == list(
        settings.load_model_module(name).features
    )
    for task in dag.tasks:
        assert task.doc_md
        if hasattr(task, "python_callable"):
            assert task.python_callable.__name__ == task.task_id


@pytest.fixture(scope="module")
def iris_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry whose champion is the iris fixture model, trained once for the module."""
    root = tmp_path_factory.mktemp("iris")
    data = fixture_models.export_csv("iris", root)
    (root / "work").mkdir()
    spec = contract.load_module(fixture_models.module("iris"))
    steps.run(data, root / "model", root / "work", spec, run_id="seed")
    return root / "model"


def inbox_batch(
    workspace: Path, registry: Path, name: str, shift: float = 0.0, target: bool = False
) -> Path:
    """The iris champion deployed, and the iris rows in the inbox: without their target
    unless ``target``, every measure ``shift`` centimetres longer."""
    shutil.copytree(registry, workspace / "model" / "iris", dirs_exist_ok=True)
    inbox = workspace / "data" / "incoming"
    inbox.mkdir(exist_ok=True)
    path = inbox / name
    rows = pd.read_csv(workspace / "data" / "iris.csv")
    measures = [c for c in rows.columns if c != "species"]
    rows[measures] += shift
    (rows if target else rows[measures]).to_csv(path, index=False)
    return path


def drift_mails(catcher: MailCatcher) -> list[str]:
    return [
        str(m["message"]["Subject"])
        for m in catcher.store.all()
        if "DRIFT" in str(m["message"]["Subject"])
    ]


def failure_mails(catcher: MailCatcher, task_id: str) -> list[str]:
    """The HTML bodies of the mails whose subject names ``task_id``, as a reader sees them."""
    return [
        html.unescape(m["message"].get_body(preferencelist=("html",)).get_content())
        for m in catcher.store.all()
        if task_id in str(m["message"]["Subject"])
    ]


def states_of(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


@pytest.mark.usefixtures("airflow_db")
def test_a_batch_in_the_inbox_is_scored_with_the_champion(
    dagbag: DagBag, smtp_catcher: MailCatcher, workspace: Path, iris_registry: Path
) -> None:
    inbox_batch(workspace, iris_registry, "monday.csv")
    version = ModelRegistry(iris_registry).current()["version"]

    dag_run = dagbag.dags["iris_scoring"].test(run_conf={"input": "monday.csv"})

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert dag_run.state == "success", states
    out = workspace / "data" / "predictions" / "monday" / f"{version}.parquet"
    scored = pd.read_parquet(out)
    assert len(scored) == 150 and set(scored["model_version"]) == {version}
    assert set(scored["prediction"]) == {"setosa", "versicolor", "virginica"}
    assert out.with_suffix(".csv").is_file()
    (summary,) = [
        ti.xcom_pull(task_ids="score_batch")
        for ti in dag_run.get_task_instances()
        if ti.task_id == "score_batch"
    ]
    assert summary["rows"] == 150 and summary["parquet"] == str(out)


@pytest.mark.usefixtures("airflow_db")
def test_a_broken_batch_fails_naming_the_row_and_leaves_no_file(
    dagbag: DagBag, smtp_catcher: MailCatcher, workspace: Path, iris_registry: Path
) -> None:
    path = inbox_batch(workspace, iris_registry, "broken.csv")
    lines = path.read_text().splitlines()
    lines[4] = "5.1,3.5,1.4,oops"
    path.write_text("\n".join(lines) + "\n")

    dag_run = dagbag.dags["iris_scoring"].test(run_conf={"input": "broken.csv"})

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert dag_run.state == "failed" and states["score_batch"] == "failed", states
    assert not (workspace / "data" / "predictions").exists()
    mails = failure_mails(smtp_catcher, "score_batch")
    assert any("column 'petal width (cm)', line 5: not a number" in m for m in mails), mails


@pytest.mark.usefixtures("airflow_db")
def test_an_input_outside_the_inbox_is_refused(
    dagbag: DagBag, smtp_catcher: MailCatcher, workspace: Path, iris_registry: Path
) -> None:
    inbox_batch(workspace, iris_registry, "monday.csv")

    dag_run = dagbag.dags["iris_scoring"].test(run_conf={"input": "../iris.csv"})

    assert dag_run.state == "failed"
    assert not (workspace / "data" / "predictions").exists()


@pytest.mark.usefixtures("airflow_db")
def test_a_batch_like_the_training_data_gets_a_report_and_no_alert(
    dagbag: DagBag, smtp_catcher: MailCatcher, workspace: Path, iris_registry: Path
) -> None:
    inbox_batch(workspace, iris_registry, "tuesday.csv")
    version = ModelRegistry(iris_registry).current()["version"]

    dag_run = dagbag.dags["iris_scoring"].test(run_conf={"input": "tuesday.csv"})

    states = states_of(dag_run)
    assert dag_run.state == "success", states
    assert states["drifted"] == "success" and states["mail_drift_alert"] == "skipped", states
    assert states["log_drift"] == "skipped"  # no MLFLOW_TRACKING_URI: tracking is off
    folder = workspace / "data" / "predictions" / "tuesday"
    report = json.loads((folder / f"{version}.drift.json").read_text())
    assert report["share"] == 0 and report["drift"] is False and report["model_version"] == version
    assert set(report["columns"]) == {c for c in pd.read_csv(folder / f"{version}.csv").columns[:4]}
    assert "<html" in (folder / f"{version}.drift.html").read_text()[:2000].lower()
    assert drift_mails(smtp_catcher) == []


@pytest.mark.usefixtures("airflow_db")
def test_a_shifted_batch_mails_one_alert_naming_its_columns(
    dagbag: DagBag, smtp_catcher: MailCatcher, workspace: Path, iris_registry: Path
) -> None:
    inbox_batch(workspace, iris_registry, "shifted.csv", shift=3.0)

    dag_run = dagbag.dags["iris_scoring"].test(run_conf={"input": "shifted.csv"})

    states = states_of(dag_run)
    assert dag_run.state == "success", states
    assert states["mail_drift_alert"] == "success" and states["trigger_training"] == "skipped"
    (subject,) = drift_mails(smtp_catcher)
    assert (
        "[iris] DRIFT in shifted: 100% of the columns" in subject
        and "(sepal length (cm)" in subject
    )
    (message,) = [
        m["message"] for m in smtp_catcher.store.all() if "DRIFT" in str(m["message"]["Subject"])
    ]
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "predictions/shifted/" in text and ".drift.html" in text and "not asked for" in text
    assert (
        "Drifted: sepal length (cm), sepal width (cm), petal length (cm), petal width (cm)" in text
    )


@pytest.mark.usefixtures("airflow_db")
def test_with_mlflow_the_batch_drift_is_a_run_of_the_models_experiment(
    dagbag: DagBag,
    smtp_catcher: MailCatcher,
    workspace: Path,
    iris_registry: Path,
    mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    inbox_batch(workspace, iris_registry, "tracked.csv", shift=3.0)
    version = ModelRegistry(iris_registry).current()["version"]

    dag_run = dagbag.dags["iris_scoring"].test(run_conf={"input": "tracked.csv"})

    states = states_of(dag_run)
    assert dag_run.state == "success" and states["log_drift"] == "success", states
    (tracked,) = [
        ti.xcom_pull(task_ids="log_drift")
        for ti in dag_run.get_task_instances()
        if ti.task_id == "log_drift"
    ]
    client = Tracker(TrackingConfig(mlflow_server.url)).client
    run = client.get_run(tracked["run_id"])
    assert run.data.tags["run_kind"] == "scoring_batch" and run.data.tags["model"] == "iris"
    assert run.data.tags["model_version"] == version
    assert run.data.tags["airflow.run_id"] == dag_run.run_id
    assert run.data.metrics["drift_share"] == 1.0
    [html] = [f.path for f in client.list_artifacts(run.info.run_id, "drift") if ".html" in f.path]
    assert html == f"drift/{version}.drift.html"
    assert tracked["report_url"].endswith(f"/runs/{run.info.run_id}/artifacts/{html}")
    assert len(drift_mails(smtp_catcher)) == 1


@pytest.mark.usefixtures("airflow_db")
def test_retrain_on_drift_starts_the_training_dag_on_the_batch(
    dagbag: DagBag, smtp_catcher: MailCatcher, workspace: Path, iris_registry: Path
) -> None:
    from airflow.models import DagRun

    inbox_batch(workspace, iris_registry, "labelled.csv", shift=3.0, target=True)
    before = {r.run_id for r in DagRun.find(dag_id="iris_training")}

    dag_run = dagbag.dags["iris_scoring"].test(
        run_conf={"input": "labelled.csv", "retrain_on_drift": True}
    )

    states = states_of(dag_run)
    assert dag_run.state == "success" and states["trigger_training"] == "success", states
    (started,) = [r for r in DagRun.find(dag_id="iris_training") if r.run_id not in before]
    assert started.conf == {"data_path": "incoming/labelled.csv"}


@pytest.mark.usefixtures("airflow_db")
def test_a_threshold_out_of_range_is_refused_naming_the_param(
    dagbag: DagBag, smtp_catcher: MailCatcher, workspace: Path, iris_registry: Path
) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    inbox_batch(workspace, iris_registry, "monday.csv")

    with pytest.raises(ParamValidationError, match="drift_threshold"):
        dagbag.dags["iris_scoring"].test(run_conf={"input": "monday.csv", "drift_threshold": 1.5})


@pytest.mark.usefixtures("airflow_db")
def test_a_champion_whose_bytes_changed_is_never_loaded_and_the_failure_is_mailed(
    dagbag: DagBag, smtp_catcher: MailCatcher, workspace: Path, iris_registry: Path
) -> None:
    inbox_batch(workspace, iris_registry, "monday.csv")
    deployed = ModelRegistry(workspace / "model" / "iris")
    stored = Path(deployed.current()["path"])
    stored.write_bytes(stored.read_bytes() + b"\0")  # as someone with write access to it would

    dag_run = dagbag.dags["iris_scoring"].test(run_conf={"input": "monday.csv"})

    states = states_of(dag_run)
    assert dag_run.state == "failed" and states["score_batch"] == "failed", states
    assert not (workspace / "data" / "predictions").exists()
    mails = failure_mails(smtp_catcher, "score_batch")
    assert any("SHA-256" in m for m in mails), mails
