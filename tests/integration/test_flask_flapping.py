"""A Flask monitor that keeps dying is relaunched each time, later each time, and the team
gets one "flapping" mail for the burst, not one per relaunch (or none at all)."""

from __future__ import annotations

import json
import os
import signal
from itertools import pairwise

import pytest

from adclick_airflow import settings
from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR
from embedded.stack import EmbeddedStack
from flask_launcher.process import ProcessLauncher
from testkit.flask_service import flask_pid, health
from testkit.mailbox import Mailbox
from testkit.tasks import task_states
from testkit.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

FLAPPING = "Flask monitor flapping"
KILLS = 5  # the default threshold is more than 3 relaunches in 10 minutes


def run_monitor(stack: EmbeddedStack) -> tuple[dict, dict]:
    client = stack.client(timeout=60)
    run = client.trigger(MONITOR, {})
    run = client.wait_for_run(MONITOR, run["dag_run_id"], timeout=240)
    return run, task_states(client, MONITOR, run["dag_run_id"])


def test_a_flapping_monitor_alerts_once_and_backs_off(
    embedded_stack: EmbeddedStack, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ADCLICK_ARTIFACT_DIR", "ADCLICK_FLASK_RELAUNCH_MAX_BACKOFF_S"):
        monkeypatch.setenv(name, embedded_stack.env[name])  # the settings the tasks read
    history = settings.flask_relaunch_file()
    policy = settings.relaunch_policy()
    ProcessLauncher.from_env(embedded_stack.env).ensure_running()  # something to kill
    wait_until(lambda: health(embedded_stack) == 200, 60, "the Flask monitor answering")
    history.unlink(missing_ok=True)  # what earlier tests relaunched is not this burst
    mailbox.clear()
    try:
        for kill in range(KILLS):
            master = flask_pid(embedded_stack)
            assert master is not None
            os.killpg(master, signal.SIGKILL)
            wait_until(lambda: health(embedded_stack) is None, 20, "the killed service silent")
            run, tasks = run_monitor(embedded_stack)
            assert run["state"] == "success", (kill, tasks)
            assert tasks["relaunch_flask"] == "success", (kill, tasks)
        recorded = json.loads(history.read_text())
    finally:
        history.unlink(missing_ok=True)  # the tests after this one start a quiet window

    relaunched = recorded["relaunches"]
    assert len(relaunched) == KILLS and recorded["flapping_since"] is not None
    # Each relaunch waited at least the doubled backoff after the one before it.
    gaps = [later - earlier for earlier, later in pairwise(relaunched)]
    waits = [min(policy.first_backoff_s * 2**i, policy.max_backoff_s) for i in range(len(gaps))]
    assert all(gap >= wait for gap, wait in zip(gaps, waits, strict=True)), (gaps, waits)
    flapping = mailbox.wait_for(lambda m: FLAPPING in m["Subject"])
    assert str(embedded_stack.ports.flask) in flapping["Subject"]
    assert [m["Subject"] for m in mailbox.messages() if FLAPPING in m["Subject"]] == [
        flapping["Subject"]
    ]
