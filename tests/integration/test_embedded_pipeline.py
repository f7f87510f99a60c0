"""The real embedded stack end to end: REST API v2 (JWT) triggers, real mail, real model files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR
from adclick_airflow.settings import RESULT_TASK_ID
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from embedded.stack import EmbeddedStack
from testkit.files import snapshot
from testkit.tasks import task_states

pytestmark = pytest.mark.integration


def run_training(stack: EmbeddedStack, conf: dict | None = None) -> dict:
    client = stack.client("admin")
    run = client.trigger(TRAINING, conf or {})
    return client.wait_for_run(TRAINING, run["dag_run_id"], timeout=300)


@pytest.fixture(scope="module")
def good_run(embedded_stack: EmbeddedStack) -> dict:
    run = run_training(embedded_stack)
    assert run["state"] == "success", run
    return run


def test_training_succeeds_and_mails_metrics(embedded_stack: EmbeddedStack, good_run: dict) -> None:
    run_id = good_run["dag_run_id"]
    result = embedded_stack.client("viewer").xcom(TRAINING, run_id, RESULT_TASK_ID)
    assert result["promoted"] is True and result["metrics"]["accuracy"] >= 0.9
    assert Path(result["model_path"]).is_file()

    mail = embedded_stack.mail.wait_for(
        lambda m: "SUCCESS" in m["Subject"] and run_id in m["Subject"]
    )
    assert f"{result['metrics']['accuracy']:.4f}" in mail["HTML"]
    report = embedded_stack.mail.wait_for(
        lambda m: "promoted" in m["Subject"] and run_id in m["Subject"]
    )
    assert "ROC AUC" in report["HTML"] and result["version"] in report["HTML"]


def test_training_run_launches_the_flask_monitor(
    embedded_stack: EmbeddedStack, good_run: dict
) -> None:
    client = embedded_stack.client("admin")
    monitor = client.latest_run(MONITOR)
    assert monitor["conf"].get("source_run_id") == good_run["dag_run_id"]
    monitor = client.wait_for_run(MONITOR, monitor["dag_run_id"], timeout=120)
    assert monitor["state"] == "success", monitor

    response = requests.get(f"{embedded_stack.flask_url}/api", timeout=10)
    assert response.history and response.history[0].status_code == 302
    assert response.url.endswith("/success")


def test_broken_dataset_fails_at_load_data_and_keeps_the_model(
    embedded_stack: EmbeddedStack, good_run: dict
) -> None:
    broken = embedded_stack.data_dir / "broken_age.csv"
    lines = (embedded_stack.data_dir / "advertising.csv").read_text().splitlines()
    fields = lines[7].split(",")
    fields[1] = "forty-two"  # Age, on CSV line 8
    lines[7] = ",".join(fields)
    broken.write_text("\n".join(lines) + "\n")
    before = snapshot(embedded_stack.model_dir)

    run = run_training(embedded_stack, {"data_path": broken.name})

    assert run["state"] == "failed"
    tasks = task_states(embedded_stack.client(), TRAINING, run["dag_run_id"])
    assert tasks["load_data"] == "failed"
    assert tasks[RESULT_TASK_ID] != "success"
    mail = embedded_stack.mail.wait_for(
        lambda m: "FAILED at load_data" in m["Subject"] and run["dag_run_id"] in m["HTML"]
    )
    assert "Age" in mail["HTML"] and "broken_age.csv" in mail["HTML"]
    assert re.search(r"\bline 8\b", mail["HTML"]), "the mail names CSV line 8"
    assert snapshot(embedded_stack.model_dir) == before


def test_two_triggers_at_once_run_one_after_the_other(embedded_stack: EmbeddedStack) -> None:
    client = embedded_stack.client("admin")
    first = client.trigger(TRAINING, {})
    second = client.trigger(TRAINING, {})
    first = client.wait_for_run(TRAINING, first["dag_run_id"], timeout=300)
    second = client.wait_for_run(TRAINING, second["dag_run_id"], timeout=300)

    assert first["state"] == second["state"] == "success"
    earlier, later = sorted((first, second), key=lambda run: run["start_date"])
    assert later["start_date"] >= earlier["end_date"], "max_active_runs=1 must serialize runs"
    results = [client.xcom(TRAINING, run["dag_run_id"], RESULT_TASK_ID) for run in (first, second)]
    assert results[0]["workdir"] != results[1]["workdir"]
    assert results[0]["version"] != results[1]["version"]
