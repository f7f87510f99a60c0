"""One training DAG per model module: parsed by a real DagBag, run with `dag.test()` for each
fixture model; a module that breaks the contract is an import error of its own, naming it,
and every other model keeps its DAG."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetEvent, AssetModel
from airflow.utils.session import create_session
from sqlalchemy import select

from adclick.registry import ModelRegistry
from embedded.stack import REPO_ROOT
from testkit import fixture_models
from testkit.datasets import MODELS
from testkit.tasks import SEED_TASKS
from testkit.tasks import TRAINING_CHAIN as CHAIN

FIXTURES = {"iris": "multiclass", "diabetes": "regression", "tumours": "binary"}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=REPO_ROOT / "dags")


@pytest.mark.parametrize("name", ["adclick", *FIXTURES])
def test_every_module_has_a_training_dag_with_the_seven_tasks(dagbag: DagBag, name: str) -> None:
    dag = dagbag.dags["ad_click_training" if name == "adclick" else f"{name}_training"]
    assert [t.task_id for t in dag.topological_sort()] == list(CHAIN)
    assert [t for t in CHAIN if t in SEED_TASKS] == list(SEED_TASKS), "seed ids in their order"
    for upstream, downstream in itertools.pairwise(CHAIN):
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
    assert sorted(dag.tags) == sorted(["ml", "training", name])
    for task in dag.tasks:
        if task.task_id not in ("send_email", "trigger_monitor", "approve_promotion"):
            assert task.python_callable.__name__ == task.task_id
    assert ("min_accuracy" in dag.params) is (name in ("adclick", "tumours"))


def test_the_gate_param_is_the_modules(dagbag: DagBag) -> None:
    assert dagbag.dags["diabetes_training"].params["gate"] == {"metric": "rmse", "max": 70.0}
    assert dagbag.dags["iris_training"].params["data_path"] == "iris.csv"


def test_models_are_not_parsed_as_dag_files() -> None:
    assert (REPO_ROOT / "dags" / ".airflowignore").read_text().splitlines() == ["models/"]


def bag_with(models: Path, monkeypatch: pytest.MonkeyPatch) -> DagBag:
    monkeypatch.setenv("ADCLICK_MODELS_DIR", str(models))
    return DagBag(dag_folder=REPO_ROOT / "dags")


def test_a_broken_module_is_an_import_error_naming_it_and_hides_no_other_dag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = fixture_models.install(tmp_path / "dags" / "models", ("iris",))
    shutil.copy(MODELS / "adclick.py", models)
    source = fixture_models.module("diabetes").read_text()
    (models / "churn.py").write_text(source.replace('TARGET = "progression"', ""))
    # Written as a DAG file would be: were models/ parsed, it would fail on its own.
    (models / "leads.py").write_text("# airflow dag\nimport no_such_package\n")

    bag = bag_with(models, monkeypatch)

    (path,) = bag.import_errors
    assert Path(path).name == "model_contracts.py"
    error = bag.import_errors[path]
    assert "dags/models/churn.py: TARGET is not defined" in error
    assert "dags/models/leads.py: importing it fails: ModuleNotFoundError" in error
    assert {"ad_click_training", "iris_training", "ad_click_monitor"} <= set(bag.dag_ids)
    assert "churn_training" not in bag.dag_ids

    (models / "churn.py").write_text(source)
    (models / "leads.py").unlink()
    fixed = bag_with(models, monkeypatch)
    assert fixed.import_errors == {} and "churn_training" in fixed.dag_ids


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("name", list(FIXTURES))
def test_each_fixture_model_trains_through_its_dag(
    dagbag: DagBag, name: str, smtp_catcher, workspace: Path
) -> None:
    dag = dagbag.dags[f"{name}_training"]
    dag_run = dag.test(mark_success_pattern="trigger_monitor")
    assert dag_run.state == "success", {ti.task_id: ti.state for ti in dag_run.get_task_instances()}

    registry = ModelRegistry(workspace / "model" / name)
    current = registry.current()
    assert current is not None and current["metadata"]["model"] == name
    assert current["metadata"]["task"] == FIXTURES[name]
    assert current["metadata"]["dag_id"] == f"{name}_training"
    assert not (workspace / "model" / "current.json").exists(), "the ad-click model's is apart"
    (result,) = [
        ti.xcom_pull(task_ids="load_model")
        for ti in dag_run.get_task_instances()
        if ti.task_id == "load_model"
    ]
    assert result["model"] == name and result["task"] == FIXTURES[name]
    assert result["labels"] == current["metadata"]["labels"]
    assert json.loads(json.dumps(result)) == result
    if FIXTURES[name] == "regression":
        assert "confusion_matrix" not in result["metrics"]
    assert any(name in str(m["message"]["Subject"]) for m in smtp_catcher.store.all())


@pytest.mark.usefixtures("airflow_db")
def test_a_gate_in_the_conf_rejects_and_keeps_nothing_current(
    dagbag: DagBag, smtp_catcher, workspace: Path
) -> None:
    dag = dagbag.dags["diabetes_training"]
    dag_run = dag.test(
        run_conf={"gate": {"metric": "rmse", "max": 1.0}}, mark_success_pattern="trigger_monitor"
    )
    assert dag_run.state == "failed"
    assert ModelRegistry(workspace / "model" / "diabetes").current() is None
    assert len(ModelRegistry(workspace / "model" / "diabetes").versions()) == 1


def load_model_result(dag_run) -> dict:
    (result,) = [
        ti.xcom_pull(task_ids="load_model")
        for ti in dag_run.get_task_instances()
        if ti.task_id == "load_model"
    ]
    return result


@pytest.mark.usefixtures("airflow_db")
def test_a_weaker_challenger_keeps_the_champion_and_the_run_succeeds(
    dagbag: DagBag, smtp_catcher, workspace: Path
) -> None:
    dag = dagbag.dags["diabetes_training"]
    registry = ModelRegistry(workspace / "model" / "diabetes")
    # Each conf in full: dag.test() leaves a run's conf in the module's DAG params.
    gate = {"metric": "rmse", "max": 70.0}
    earlier = champion_events("diabetes")
    first = dag.test(
        run_conf={"gate": gate, "candidates": [{}]}, mark_success_pattern="trigger_monitor"
    )
    champion = registry.current()["version"]
    promoted = champion_events("diabetes")
    assert len(promoted) == len(earlier) + 1, "a promotion updates the model's asset"
    assert promoted[-1]["version"] == champion and promoted[-1]["metric"] == "rmse"
    assert promoted[-1]["score"] == pytest.approx(load_model_result(first)["metrics"]["rmse"])

    weaker = dag.test(
        run_conf={"gate": gate, "candidates": [{"alpha": 1000.0}]},
        mark_success_pattern="trigger_monitor",
    )

    assert weaker.state == "success", {t.task_id: t.state for t in weaker.get_task_instances()}
    result = load_model_result(weaker)
    assert result["promoted"] is False and result["quality_gate"]["passed"] is True
    assert result["promotion"]["decision"] == "kept_champion"
    assert result["promotion"]["champion_version"] == champion
    assert result["promotion"]["champion_score"] == pytest.approx(
        load_model_result(first)["metrics"]["rmse"]
    )
    assert registry.current()["version"] == champion
    assert len(registry.versions()) == 2
    assert champion_events("diabetes") == promoted, "a kept champion emits no asset event"


def champion_events(name: str) -> list[dict]:
    """The extras of the asset events of model ``name``'s champion asset, oldest first."""
    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == f"{name}_champion")
            .order_by(AssetEvent.id)
        )
        return [dict(event.extra or {}) for event in events]
