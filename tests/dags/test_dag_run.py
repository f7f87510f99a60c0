"""Run the training DAG in-process with `dag.test()`, its mails going to a real SMTP server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from airflow.dag_processing.dagbag import DagBag

from adclick.registry import ModelRegistry
from embedded.mailcatcher import MailCatcher
from embedded.stack import REPO_ROOT
from testkit.datasets import SAMPLE_CSV

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture(scope="module")
def training_dag():
    return DagBag(dag_folder=REPO_ROOT / "dags").dags["ad_click_training"]


def subjects(catcher: MailCatcher) -> list[str]:
    return [str(m["message"]["Subject"]) for m in catcher.store.all()]


def html_of(catcher: MailCatcher, needle: str) -> str:
    for entry in catcher.store.all():
        if needle in str(entry["message"]["Subject"]):
            return entry["message"].get_body(preferencelist=("html",)).get_content()
    raise AssertionError(f"no mail with {needle!r} in its subject: {subjects(catcher)}")


def assert_links_to(html: str, run_id: str) -> None:
    """The run's monitor page and its page in Airflow."""
    assert f'href="http://127.0.0.1:5000/runs/{quote(run_id, safe="")}"' in html
    assert f'/dags/ad_click_training/runs/{quote(run_id, safe="")}"' in html


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_run_trains_promotes_and_mails(training_dag, smtp_catcher, workspace: Path) -> None:
    dag_run = training_dag.test(mark_success_pattern="trigger_monitor")

    assert dag_run.state == "success", states(dag_run)
    current = ModelRegistry(workspace / "model").current()
    assert current is not None and current["metrics"]["accuracy"] >= 0.9
    report = html_of(smtp_catcher, "promoted")
    assert dag_run.run_id in report and "Accuracy" in report and "ROC AUC" in report
    success = html_of(smtp_catcher, "SUCCESS")
    assert dag_run.run_id in success and f"{current['metrics']['accuracy']:.4f}" in success
    (tn, fp), (fn, tp) = current["metrics"]["confusion_matrix"]
    for html in (report, success):
        assert_links_to(html, dag_run.run_id)
        assert "Confusion matrix" in html and ">click</th>" in html and ">no click</th>" in html
        assert all(f'data-count="{count}"' in html for count in (tn, fp, fn, tp))
        assert f"{100 * tp / (fn + tp):.1f} % of actual click" in html


def test_bad_data_fails_at_load_data_and_mails_the_problem(
    training_dag, smtp_catcher, workspace: Path
) -> None:
    broken = workspace / "data" / "broken.csv"
    broken.write_text(SAMPLE_CSV.read_text().replace("Daily Time Spent", "Time", 1))
    dag_run = training_dag.test(
        run_conf={"data_path": "broken.csv"}, mark_success_pattern="trigger_monitor"
    )

    assert dag_run.state == "failed"
    assert states(dag_run)["load_data"] == "failed"
    failure = html_of(smtp_catcher, "FAILED at load_data")
    assert "Daily Time Spent on Site" in failure and "broken.csv" in failure
    for html in (failure, html_of(smtp_catcher, "FAILED: run")):
        reason = html.index("missing required column &#39;Daily Time Spent on Site&#39;")
        assert reason < html.index("This run on the monitor") < html.index("Run id")
        assert_links_to(html, dag_run.run_id)
    assert not any((workspace / "model").iterdir()), "a failed run must not write a model"


def test_conf_outside_data_root_is_refused(training_dag, smtp_catcher, workspace: Path) -> None:
    dag_run = training_dag.test(
        run_conf={"data_path": "../../etc/passwd"}, mark_success_pattern="trigger_monitor"
    )
    assert states(dag_run)["load_data"] == "failed"
    assert "outside the data root" in html_of(smtp_catcher, "FAILED at load_data")
