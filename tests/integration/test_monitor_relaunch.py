"""The monitor DAG brings a killed Flask service back, with exactly one gunicorn master."""

from __future__ import annotations

import os
import signal

import pytest

from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR
from embedded.stack import EmbeddedStack
from testkit.flask_service import flask_pid, health, masters_serving
from testkit.tasks import task_states
from testkit.waiting import wait_until

pytestmark = pytest.mark.integration


def run_monitor(stack: EmbeddedStack) -> dict:
    client = stack.client("admin")
    run = client.trigger(MONITOR, {})
    return client.wait_for_run(MONITOR, run["dag_run_id"], timeout=120)


def test_killed_flask_is_relaunched_once(embedded_stack: EmbeddedStack) -> None:
    first = run_monitor(embedded_stack)  # launches it if nothing did yet
    assert first["state"] == "success", first
    assert health(embedded_stack) == 200
    master = flask_pid(embedded_stack)

    os.kill(master, signal.SIGKILL)
    # Workers notice their master is gone and exit.
    wait_until(lambda: health(embedded_stack) is None, 10, "the killed service to stop answering")
    assert health(embedded_stack) is None

    run = run_monitor(embedded_stack)

    assert run["state"] == "success", run
    tasks = task_states(embedded_stack.client(), MONITOR, run["dag_run_id"])
    assert tasks["relaunch_flask"] == "success" and tasks["verify_flask_health"] == "success"
    assert health(embedded_stack) == 200
    assert flask_pid(embedded_stack) != master
    assert masters_serving(embedded_stack.ports.flask) == [flask_pid(embedded_stack)]


def test_healthy_flask_is_left_alone(embedded_stack: EmbeddedStack) -> None:
    if health(embedded_stack) != 200:
        assert run_monitor(embedded_stack)["state"] == "success"
    master = flask_pid(embedded_stack)

    run = run_monitor(embedded_stack)

    tasks = task_states(embedded_stack.client(), MONITOR, run["dag_run_id"])
    assert tasks["relaunch_flask"] == "skipped"
    assert flask_pid(embedded_stack) == master
