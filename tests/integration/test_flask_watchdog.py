"""The watchdog DAG waits in the triggerer and brings a crashed Flask service back by itself."""

from __future__ import annotations

import os
import signal
import time

import pytest

from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR
from adclick_airflow.settings import WATCHDOG_DAG_ID as WATCHDOG
from embedded.stack import EmbeddedStack
from testkit.flask_service import flask_pid, health, masters_serving
from testkit.tasks import task_states
from testkit.waiting import wait_until

pytestmark = pytest.mark.integration


def test_crashed_flask_comes_back_without_anyone_asking(embedded_stack: EmbeddedStack) -> None:
    admin = embedded_stack.client("admin")
    if health(embedded_stack) != 200:  # make sure there is something to crash
        run = admin.trigger(MONITOR, {})
        assert admin.wait_for_run(MONITOR, run["dag_run_id"], timeout=120)["state"] == "success"
    before = flask_pid(embedded_stack)
    run_id = admin.trigger(WATCHDOG, {})["dag_run_id"]
    wait_until(
        lambda: task_states(admin, WATCHDOG, run_id).get("wait_for_flask_down") == "deferred",
        60,
        "the watchdog to start waiting in the triggerer",
    )
    time.sleep(3)  # a healthy service does not wake it up
    assert task_states(admin, WATCHDOG, run_id)["wait_for_flask_down"] == "deferred"

    os.killpg(before, signal.SIGKILL)  # the whole service: master and workers
    wait_until(lambda: health(embedded_stack) == 200, 60, "the watchdog to bring Flask back")

    run = admin.wait_for_run(WATCHDOG, run_id, timeout=120)
    assert run["state"] == "success", task_states(admin, WATCHDOG, run_id)
    assert admin.xcom(WATCHDOG, run_id, "relaunch_flask") in ("started", "restarted")
    assert admin.xcom(WATCHDOG, run_id, "wait_for_flask_down")["error"]
    assert flask_pid(embedded_stack) != before
    assert masters_serving(embedded_stack.ports.flask) == [flask_pid(embedded_stack)]
