"""One scoring DAG per model module, parsed by a real DagBag and run with `dag.test()` on a
fixture model: a batch in the inbox is scored with the champion's version and labels; a
broken one fails naming the row, mails it, and leaves no prediction file."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pandas as pd
import pytest
from airflow.dag_processing.dagbag import DagBag

from adclick import contract, steps
from adclick.registry import ModelRegistry
from adclick_airflow import settings
from embedded.mailcatcher import MailCatcher
from embedded.stack import REPO_ROOT
from testkit import fixture_models

SCORING_CHAIN = ("locate_input", "score_batch")


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=REPO_ROOT / "dags")


@pytest.mark.parametrize("name", ["adclick", *fixture_models.NAMES])
def test_every_module_has_a_scoring_dag(dagbag: DagBag, name: str) -> None:
    dag = dagbag.dags["ad_click_scoring" if name == "adclick" else f"{name}_scoring"]
    assert [t.task_id for t in dag.topological_sort()] == list(SCORING_CHAIN)
    assert sorted(dag.tags) == sorted(["ml", "scoring", name])
    assert dag.doc_md and set(dag.params) == {"input"}
    batches, champion = dag.timetable.asset_condition.objects  # either one starts a run
    assert (batches.name, champion.name) == (f"{name}_batches", f"{name}_champion")
    (watcher,) = batches.watchers
    assert watcher.trigger.serialize()[1]["columns"] == list(
        settings.load_model_module(name).features
    )
    for task in dag.tasks:
        assert task.python_callable.__name__ == task.task_id and task.doc_md


@pytest.fixture(scope="module")
def iris_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry whose champion is the iris fixture model, trained once for the module."""
    root = tmp_path_factory.mktemp("iris")
    data = fixture_models.export_csv("iris", root)
    (root / "work").mkdir()
    spec = contract.load_module(fixture_models.module("iris"))
    steps.run(data, root / "model", root / "work", spec, run_id="seed")
    return root / "model"


def inbox_batch(workspace: Path, registry: Path, name: str) -> Path:
    """The iris champion deployed, and the iris rows without their target in the inbox."""
    shutil.copytree(registry, workspace / "model" / "iris")
    inbox = workspace / "data" / "incoming"
    inbox.mkdir()
    path = inbox / name
    pd.read_csv(workspace / "data" / "iris.csv").drop(columns=["species"]).to_csv(path, index=False)
    return path


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
    mails = [
        html.unescape(m["message"].get_body(preferencelist=("html",)).get_content())
        for m in smtp_catcher.store.all()
        if "score_batch" in str(m["message"]["Subject"])
    ]
    assert any("column 'petal width (cm)', line 5: not a number" in m for m in mails), mails


@pytest.mark.usefixtures("airflow_db")
def test_an_input_outside_the_inbox_is_refused(
    dagbag: DagBag, smtp_catcher: MailCatcher, workspace: Path, iris_registry: Path
) -> None:
    inbox_batch(workspace, iris_registry, "monday.csv")

    dag_run = dagbag.dags["iris_scoring"].test(run_conf={"input": "../iris.csv"})

    assert dag_run.state == "failed"
    assert not (workspace / "data" / "predictions").exists()
