"""The DAG files parse cleanly and wire exactly what the project promises."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.smtp.operators.smtp import EmailOperator

from adclick_airflow import notify
from embedded.stack import REPO_ROOT
from testkit.tasks import TRAINING_CHAIN


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=REPO_ROOT / "dags")


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {
        "ad_click_training",
        "iris_training",
        "diabetes_training",
        "tumours_training",
        "ad_click_scoring",
        "iris_scoring",
        "diabetes_scoring",
        "tumours_scoring",
        "ad_click_monitor",
        "ad_click_flask_watchdog",
        "model_server_watchdog",
        "ad_click_maintenance",
    }


def test_training_tasks_form_the_promised_chain(dagbag: DagBag) -> None:
    dag = dagbag.dags["ad_click_training"]
    assert sorted(dag.task_ids) == sorted(TRAINING_CHAIN)
    for upstream, downstream in itertools.pairwise(TRAINING_CHAIN):
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
    assert dag.get_task("trigger_monitor").trigger_dag_id == "ad_click_monitor"


def test_training_dag_settings(dagbag: DagBag) -> None:
    dag = dagbag.dags["ad_click_training"]
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.timetable.timetable.expression == "0 0 * * *"  # daily, or on new data:
    (data,) = dag.timetable.asset_condition.objects
    assert data.name == "adclick_data" and data.watchers
    assert dag.doc_md and dag.tags
    assert set(dag.params) == {
        "data_path",
        "gate",
        "min_accuracy",
        "min_improvement",
        "require_approval",
        "approval_timeout",
        "test_size",
        "random_state",
        "candidates",
    }
    assert dag.params["candidates"] == [{}], "by default one candidate: the classifier's defaults"
    assert dag.params["gate"] == {"metric": "accuracy", "min": 0.9}
    assert dag.params["min_accuracy"] is None, "a shorthand, used when given"
    assert dag.params["min_improvement"] == 0, "as good as the champion is enough"
    assert dag.params["require_approval"] is False and dag.params["approval_timeout"] == 24
    for task in dag.tasks:
        # load_data fails on the file, whose retry would fail (or time out) the same way.
        assert (task.retries == 0) == (task.task_id == "load_data"), task.task_id
        assert task.on_failure_callback in ([notify.task_failed], notify.task_failed), task.task_id
        assert task.doc_md or task.doc or task.task_id == "trigger_monitor", task.task_id
    # Whatever sits in the data root, the DAG's only run slot is not held for long.
    assert dag.get_task("load_data").execution_timeout <= timedelta(minutes=5)


def test_training_tasks_receive_only_what_they_use(dagbag: DagBag) -> None:
    """The run's working directory comes from the run id, never through XCom (which an admin
    can edit); load_model receives the candidates' results (their files' SHA-256, checked
    before a model is loaded) and the report the registered model, nothing else."""
    dag = dagbag.dags["ad_click_training"]
    for task_id in TRAINING_CHAIN[:3]:
        task = dag.get_task(task_id)
        assert not task.op_args and not task.op_kwargs, task_id
    (fitted,) = dag.get_task("load_model").op_args
    assert fitted.operator.task_id == "build_model" and fitted.key == "return_value"
    assert not dag.get_task("load_model").op_kwargs
    fit = dag.get_task("build_model")
    expanded = fit.op_kwargs_expand_input.value
    assert fit.is_mapped and set(expanded) == {"candidate"}, "one task per candidate, nothing else"
    grid = expanded["candidate"]
    assert grid.operator.task_id == "separate_data_outputs" and grid.key == "return_value"
    assert not fit.partial_kwargs["op_args"] and not fit.partial_kwargs["op_kwargs"]
    report = dag.get_task("send_email")
    assert isinstance(report, EmailOperator), "the SMTP provider's operator sends the report"
    assert report.upstream_task_ids == {"record_approval"}
    assert "xcom_pull(task_ids='record_approval')" in report.html_content
    for task_id in ("promote_approved", "record_approval"):
        task = dag.get_task(task_id)
        assert not task.op_args and not task.op_kwargs, task_id


def test_callbacks_wired(dagbag: DagBag) -> None:
    dag = dagbag.dags["ad_click_training"]
    assert dag.on_success_callback in (notify.notify_success, [notify.notify_success])
    assert dag.on_failure_callback in (notify.notify_failure, [notify.notify_failure])


@pytest.mark.parametrize("dag_id", ["ad_click_monitor", "ad_click_flask_watchdog"])
def test_a_failed_relaunch_reports_the_outage(dagbag: DagBag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    for task_id in ("relaunch_flask", "verify_flask_health"):
        assert dag.get_task(task_id).on_failure_callback == [notify.flask_down], task_id


def test_monitor_dag_shape(dagbag: DagBag) -> None:
    dag = dagbag.dags["ad_click_monitor"]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.schedule == "*/5 * * * *"
    assert dag.get_task("check_flask_health").downstream_task_ids == {"relaunch_flask"}
    assert dag.get_task("relaunch_flask").downstream_task_ids == {"verify_flask_health"}
    # A first read that times out on a busy machine is retried, not a red run on the home page.
    assert dag.get_task("check_dag_status").retries >= 1
    for task in dag.tasks:
        assert task.execution_timeout is not None, task.task_id


@pytest.mark.parametrize(
    ("dag_id", "name", "service", "relaunch", "verify"),
    [
        ("ad_click_flask_watchdog", "flask", "FLASK_MONITOR", "relaunch_flask",
         "verify_flask_health"),
        ("model_server_watchdog", "model_server", "MODEL_SERVER", "relaunch_model_server",
         "verify_model_server_health"),
    ],
)  # fmt: skip
def test_watchdog_waits_in_the_triggerer(
    dagbag: DagBag, dag_id: str, name: str, service: str, relaunch: str, verify: str
) -> None:
    dag = dagbag.dags[dag_id]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.schedule == "@continuous"
    wait = dag.get_task(f"wait_for_{name}_down")
    assert wait.start_from_trigger is True
    assert wait.start_trigger_args.trigger_cls == "adclick_airflow.watchdog.FlaskDownTrigger"
    assert wait.start_trigger_args.trigger_kwargs["service"] == service
    assert wait.downstream_task_ids == {relaunch}
    assert dag.get_task(relaunch).downstream_task_ids == {verify}
    assert dag.get_task(relaunch).retries >= 1  # no tight relaunch loop
    for task in dag.tasks:
        assert task.doc_md or task.doc, task.task_id


def test_a_failed_relaunch_of_the_model_server_reports_its_outage(dagbag: DagBag) -> None:
    dag = dagbag.dags["model_server_watchdog"]
    for task_id in ("relaunch_model_server", "verify_model_server_health"):
        assert dag.get_task(task_id).on_failure_callback == [notify.model_server_down], task_id


def test_maintenance_runs_daily_and_each_task_has_a_time_limit(dagbag: DagBag) -> None:
    dag = dagbag.dags["ad_click_maintenance"]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.schedule == "@daily"
    assert dag.doc_md and dag.tags
    assert set(dag.task_ids) == {
        "remove_old_run_dirs",
        "remove_old_model_versions",
        "remove_old_task_logs",
        "clean_metadata_db",
    }
    for task in dag.tasks:
        assert task.execution_timeout is not None, task.task_id
        assert task.on_failure_callback in ([notify.task_failed], notify.task_failed), task.task_id
        assert task.doc_md or task.doc, task.task_id


def test_only_what_needs_the_main_host_is_routed_to_its_queue(dagbag: DagBag) -> None:
    """Relaunching Flask, pinging it, reading the monitor's password and cleaning the main
    host's folders need that host; training runs on any worker's default queue."""
    from airflow.configuration import conf

    from adclick_airflow.settings import MAIN_HOST_QUEUE

    default = conf.get("operators", "default_queue")
    assert default != MAIN_HOST_QUEUE
    for dag_id in (
        "ad_click_monitor",
        "ad_click_flask_watchdog",
        "model_server_watchdog",
        "ad_click_maintenance",
    ):
        for task in dagbag.dags[dag_id].tasks:
            assert task.queue == MAIN_HOST_QUEUE, f"{dag_id}.{task.task_id}: {task.queue}"
    for task in dagbag.dags["ad_click_training"].tasks:
        assert task.queue == default, f"ad_click_training.{task.task_id}: {task.queue}"
