"""A person's sign-off through the real embedded stack, with a fixture model: a run with
``require_approval`` waits in ``awaiting_input`` (mailed, shown on the monitor) without
holding the executor's only slot; the ``approver`` answers through REST API v2 (the
read-only ``monitor`` gets 403); approved, the model becomes current and MLflow's champion;
rejected or unanswered in time, the champion stays. Each outcome is recorded with who
answered."""

from __future__ import annotations

import time
from collections.abc import Iterator

import mlflow
import pytest

from adclick.registry import ModelRegistry
from adclick.tracking import CHAMPION_ALIAS
from adclick_airflow.settings import (
    APPROVAL_TASK_ID,
    MONITOR_DAG_ID,
    SETTLED_RESULT_TASK_ID,
)
from adclick_contract import AWAITING_INPUT_STATE as AWAITING
from airflow_rest import AirflowAuthError
from embedded.mlflow_server import MlflowServer
from embedded.stack import EmbeddedStack
from monitor import create_app
from testkit import approval, fixture_models
from testkit.approval import waiting_or_ended
from testkit.mailbox import Mailbox
from testkit.ports import free_ports
from testkit.runs import patiently
from testkit.stacks import triggered_runs_only
from testkit.tasks import task_states

pytestmark = pytest.mark.integration

NAME = "tumours"  # the model whose promotions wait for a person
OTHER = "iris"  # another training DAG, which must run while an approval waits
STACK_START_TIMEOUT_S = 360
RUN_TIMEOUT_S = 900  # a shared, loaded machine: a run took over 5 min
CALL_TIMEOUT_S = 30.0  # per REST call: the machine may be shared and loaded


def dag(name: str) -> str:
    return f"{name}_training"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, mlflow_server: MlflowServer
) -> Iterator[EmbeddedStack]:
    """An embedded stack whose executor has one slot (``[core] parallelism`` 1): a waiting
    approval that held it would stop every other task. The scheduler looks for approvals
    past their timeout every second (Airflow's default: 15 s)."""
    root = tmp_path_factory.mktemp("approval")
    data_dir = root / "data"
    data_dir.mkdir()
    models = fixture_models.install(root / "dags" / "models", (NAME, OTHER))
    for name in (NAME, OTHER):
        fixture_models.export_csv(name, data_dir)
    stack = EmbeddedStack(
        home=root / "airflow",
        ports=free_ports(),
        model_dir=root / "model",
        data_dir=data_dir,
        models_dir=models,
        mlflow_server=mlflow_server,
        extra_env={
            **triggered_runs_only((NAME, OTHER)),
            "AIRFLOW__CORE__PARALLELISM": "1",
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "1",
            # A loaded shared machine can take minutes to parse a DAG file, and its api-server
            # longer than the 5 s a task's supervisor waits for an answer.
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
        },
    )
    stack.start(timeout=STACK_START_TIMEOUT_S)
    try:
        stack.wait_for_dags((dag(NAME), dag(OTHER), MONITOR_DAG_ID), timeout=STACK_START_TIMEOUT_S)
        admin = stack.client()
        # The runs' trigger_monitor start monitor runs that wait: no Flask service is needed.
        admin.set_paused(MONITOR_DAG_ID, True)
        for name in (NAME, OTHER):
            admin.set_paused(dag(name), False)
        stack.mail = Mailbox(stack.mail_url)
        yield stack
    finally:
        stack.stop()


def waiting_run(stack: EmbeddedStack, **conf: object) -> str:
    """Trigger the model's training with approval required; its run id once it waits."""
    admin = stack.client(timeout=CALL_TIMEOUT_S)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    conf = {"require_approval": True, **conf}
    run_id = patiently(lambda: admin.trigger(dag(NAME), conf), deadline)["dag_run_id"]

    waits = patiently(lambda: waiting_or_ended(admin, dag(NAME), run_id, RUN_TIMEOUT_S), deadline)
    assert waits == "waits"
    return run_id


def answer(client, run_id: str, option: str) -> object:
    """Answer the run's approval through REST API v2 as ``client``'s user."""
    return approval.answer(client, dag(NAME), run_id, option, CALL_TIMEOUT_S)


def finished(stack: EmbeddedStack, run_id: str) -> tuple[dict, dict]:
    """The ended run (it must have succeeded) and its final result."""
    admin = stack.client(timeout=CALL_TIMEOUT_S)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    run = patiently(lambda: admin.wait_for_run(dag(NAME), run_id, RUN_TIMEOUT_S), deadline)
    assert run["state"] == "success", task_states(admin, dag(NAME), run_id)
    return run, admin.xcom(dag(NAME), run_id, SETTLED_RESULT_TASK_ID)


def champion(stack: EmbeddedStack) -> str | None:
    current = ModelRegistry(stack.model_dir / NAME).current()
    return current["version"] if current else None


def promotion_events(stack: EmbeddedStack, run_id: str) -> list[dict]:
    admin = stack.client()
    name = f"{NAME}_champion"
    # No DAG schedules on the asset in this stack: it is listed only when inactive ones are.
    params = {"name_pattern": name, "only_active": "false"}
    assets = admin.request("GET", "/api/v2/assets", params=params)["assets"]
    ids = [a["id"] for a in assets if a["name"] == name]
    if not ids:
        return []
    events = admin.request("GET", "/api/v2/assets/events", params={"asset_id": ids[0]})
    return [e for e in events["asset_events"] if e["source_run_id"] == run_id]


def mlflow_tags(stack: EmbeddedStack, result: dict) -> tuple[dict, dict]:
    """The tags of the result's MLflow run and of its model version."""
    client = mlflow.MlflowClient(stack.mlflow_url)
    tracked = result["mlflow"]
    run = client.get_run(tracked["run_id"])
    version = client.get_model_version(tracked["model_name"], tracked["model_version"])
    return run.data.tags, version.tags


def test_an_approved_model_becomes_champion_and_the_wait_holds_no_slot(
    stack: EmbeddedStack,
) -> None:
    run_id = waiting_run(stack)
    assert champion(stack) is None, "nothing moves before the answer"

    request = stack.mail.wait_for(
        lambda m: "approval needed" in m["Subject"] and run_id in m["Subject"]
    )
    answer_url = (
        f"{stack.api_url}/dags/{dag(NAME)}/runs/{run_id}/tasks/{APPROVAL_TASK_ID}/required_actions"
    )
    assert answer_url in request["Text"] and "Champion" in request["Text"]

    monitor = create_app(
        {
            "AIRFLOW_URL": stack.api_url,
            "AIRFLOW_PASSWORD": stack.viewer.password,
            "TRAINING_DAG_ID": dag(NAME),
            "CACHE_TTL": 0,
        }
    ).test_client()
    page = monitor.get("/api").get_data(as_text=True)
    assert "awaiting approval" in page and "required_actions" in page

    with pytest.raises(AirflowAuthError, match="403"):
        answer(stack.client("viewer"), run_id, "Approve")

    # One executor slot: the other DAG's tasks run only if the waiting one holds none.
    admin = stack.client(timeout=CALL_TIMEOUT_S)
    started = time.monotonic()
    deadline = started + RUN_TIMEOUT_S
    other = patiently(lambda: admin.trigger(dag(OTHER), {}), deadline)["dag_run_id"]
    done = patiently(lambda: admin.wait_for_run(dag(OTHER), other, RUN_TIMEOUT_S), deadline)
    assert done["state"] == "success"
    assert task_states(admin, dag(NAME), run_id)[APPROVAL_TASK_ID] == AWAITING, (
        f"still waiting after the other run's {time.monotonic() - started:.0f} s"
    )

    answer(stack.client("approver"), run_id, "Approve")

    _, result = finished(stack, run_id)
    assert result["promoted"] is True
    assert result["approval"]["state"] == "approved" and result["approval"]["by"] == "approver"
    assert champion(stack) == result["version"]
    client = mlflow.MlflowClient(stack.mlflow_url)
    alias = client.get_model_version_by_alias(NAME, CHAMPION_ALIAS)
    assert alias.version == result["mlflow"]["model_version"]
    run_tags, version_tags = mlflow_tags(stack, result)
    for tags in (run_tags, version_tags):
        assert tags["approval"] == "approved" and tags["approval_by"] == "approver"
    (event,) = promotion_events(stack, run_id)
    assert event["extra"]["version"] == result["version"]
    report = stack.mail.wait_for(lambda m: run_id in m["Subject"] and "approved by" in m["Subject"])
    assert "approved by approver" in report["Text"]


def test_a_rejected_model_keeps_the_champion(stack: EmbeddedStack) -> None:
    kept = champion(stack)
    assert kept, "the test before made one"
    run_id = waiting_run(stack)

    answer(stack.client("approver"), run_id, "Reject")

    _, result = finished(stack, run_id)
    assert result["promoted"] is False and result["version"] != kept
    assert result["approval"]["state"] == "rejected" and result["approval"]["by"] == "approver"
    assert champion(stack) == kept
    tags, _ = mlflow_tags(stack, result)
    assert tags["approval"] == "rejected"
    assert promotion_events(stack, run_id) == []
    states = task_states(stack.client(), dag(NAME), run_id)
    assert states["promote_approved"] == "skipped" and states["send_email"] == "success"


def test_no_answer_in_time_keeps_the_champion(stack: EmbeddedStack) -> None:
    kept = champion(stack)
    run_id = waiting_run(stack, approval_timeout=0.001)  # 3.6 s

    _, result = finished(stack, run_id)

    assert result["promoted"] is False
    assert result["approval"]["state"] == "timed_out" and result["approval"]["by"] is None
    assert champion(stack) == kept
    assert promotion_events(stack, run_id) == []
