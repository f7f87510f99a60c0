"""The Compose stack end to end, from the outside, through ports published on 127.0.0.1:
train through the REST API, get the mail, see the monitor DAG and the Flask service report it,
then kill the Flask container and watch the watchdog, and then the monitor DAG, bring it back.
"""

from __future__ import annotations

import pytest
import requests

from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from airflow_rest import AirflowAuthError, AirflowClient
from testkit.compose import ComposeStack, docker
from testkit.mailbox import Mailbox
from testkit.tasks import SKIPPED_WITHOUT_APPROVAL, task_states
from testkit.waiting import wait_until
from testkit.watchdog import WATCHDOG, running_runs, switch_off_watchdog, watchdog_waiting

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]


def flask_health(stack: ComposeStack) -> int | None:
    try:
        return requests.get(f"{stack.flask_url}/health", timeout=3).status_code
    except requests.RequestException:
        return None


@pytest.fixture(scope="module")
def admin(stack: ComposeStack) -> AirflowClient:
    return stack.api("admin")


@pytest.fixture(scope="module")
def training_run(stack: ComposeStack, admin: AirflowClient, mail: Mailbox) -> dict:
    """One training run triggered through REST API v2 as admin, waited for."""
    mail.clear()
    run_id = admin.trigger(TRAINING)["dag_run_id"]
    return admin.wait_for_run(TRAINING, run_id, timeout=420)


def test_stack_reports_healthy(stack: ComposeStack) -> None:
    # The first call after start-up may wait for the api-server's workers to warm up.
    health = requests.get(f"{stack.airflow_url}/api/v2/monitor/health", timeout=60).json()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    assert flask_health(stack) == 200
    assert requests.get(f"{stack.mail_url}/livez", timeout=5).status_code == 200


def test_viewer_account_is_read_only(stack: ComposeStack) -> None:
    viewer = stack.api("viewer")
    assert "dag_runs" in viewer.request("GET", f"/api/v2/dags/{TRAINING}/dagRuns")
    with pytest.raises(AirflowAuthError, match="HTTP 403"):
        viewer.trigger(TRAINING)


def test_training_pipeline_succeeds(stack: ComposeStack, admin: AirflowClient, training_run: dict):
    run_id = training_run["dag_run_id"]
    states = task_states(admin, TRAINING, run_id)
    assert training_run["state"] == "success", states
    assert {k: v for k, v in states.items() if v != "success"} == SKIPPED_WITHOUT_APPROVAL, states
    result = admin.xcom(TRAINING, run_id, "load_model")
    assert result["promoted"] is True, result
    assert result["metrics"]["accuracy"] >= 0.9, result


def test_report_mail_reaches_the_catcher(training_run: dict, mail: Mailbox) -> None:
    run_id = training_run["dag_run_id"]
    # The report's subject: "[dag] run <id>: accuracy 0.97, model <version> promoted".
    report = mail.wait_for(lambda m: f"run {run_id}: accuracy" in m["Subject"])
    assert any(to["Address"] == "ml-team@adclick.local" for to in report["To"]), report["To"]
    assert "Hold-out metrics" in report["HTML"]


def test_monitor_dag_ran_after_training(admin: AirflowClient, training_run: dict) -> None:
    """trigger_monitor started ad_click_monitor for this run; Flask was up, so no relaunch."""
    source = training_run["dag_run_id"]
    runs = admin.request("GET", f"/api/v2/dags/{MONITOR}/dagRuns", params={"limit": 50})["dag_runs"]
    mine = [r for r in runs if (r.get("conf") or {}).get("source_run_id") == source]
    assert mine, f"no {MONITOR} run with source_run_id={source}: {runs}"
    run = admin.wait_for_run(MONITOR, mine[0]["dag_run_id"], timeout=180)
    states = task_states(admin, MONITOR, run["dag_run_id"])
    assert run["state"] == "success", states
    assert states["check_dag_status"] == "success", states
    assert states["check_flask_health"] == "success", states
    assert states["relaunch_flask"] == "skipped", states


def test_flask_monitor_shows_the_successful_run(stack: ComposeStack, training_run: dict):
    status = requests.get(f"{stack.flask_url}/api/status", timeout=10)
    assert status.status_code == 200, status.text
    assert training_run["dag_run_id"] in status.text
    redirect = requests.get(f"{stack.flask_url}/api", allow_redirects=False, timeout=10)
    assert redirect.status_code == 302, redirect.text
    assert redirect.headers["Location"].endswith("/success"), redirect.headers
    page = requests.get(f"{stack.flask_url}/success", timeout=10)
    assert page.status_code == 200
    assert training_run["dag_run_id"] in page.text


def kill_flask_container(stack: ComposeStack) -> str:
    container = stack.container_id("flask-monitor")
    docker("kill", container)
    # A killed container stays down: the restart policy leaves manual kills alone.
    assert docker("inspect", "--format", "{{.State.Status}}", container) == "exited"
    return container


def test_watchdog_brings_back_a_killed_flask_container(
    stack: ComposeStack, admin: AirflowClient, training_run: dict
) -> None:
    wait_until(lambda: watchdog_waiting(admin), 120, "the watchdog to wait in the triggerer")
    [waiting] = running_runs(admin)
    container = kill_flask_container(stack)

    wait_until(lambda: flask_health(stack) == 200, 90, "the watchdog to restart Flask")
    run = admin.wait_for_run(WATCHDOG, waiting["dag_run_id"], timeout=120)
    assert run["state"] == "success", task_states(admin, WATCHDOG, run["dag_run_id"])
    assert admin.xcom(WATCHDOG, run["dag_run_id"], "relaunch_flask") == "started"
    assert docker("inspect", "--format", "{{.State.Status}}", container) == "running"
    wait_until(lambda: watchdog_waiting(admin), 120, "the next watchdog run to wait again")


def test_monitor_dag_brings_back_a_killed_flask_container(
    stack: ComposeStack, admin: AirflowClient, training_run: dict
) -> None:
    switch_off_watchdog(admin)
    container = kill_flask_container(stack)
    wait_until(lambda: flask_health(stack) is None, 30, "the killed Flask monitor to go away")

    run_id = admin.trigger(MONITOR)["dag_run_id"]
    run = admin.wait_for_run(MONITOR, run_id, timeout=180)
    states = task_states(admin, MONITOR, run_id)
    assert run["state"] == "success", states
    assert states["relaunch_flask"] == "success", states
    assert states["verify_flask_health"] == "success", states
    assert admin.xcom(MONITOR, run_id, "relaunch_flask") == "started"

    assert docker("inspect", "--format", "{{.State.Status}}", container) == "running"
    assert flask_health(stack) == 200
    redirect = requests.get(f"{stack.flask_url}/api", allow_redirects=False, timeout=10)
    assert redirect.headers["Location"].endswith("/success"), redirect.headers
