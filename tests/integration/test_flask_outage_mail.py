"""A Flask monitor that cannot be brought back mails once, not once per attempt, and once
more when it answers again."""

from __future__ import annotations

import socket

import pytest

from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR
from embedded.stack import EmbeddedStack
from flask_launcher.process import ProcessLauncher
from testkit.flask_service import flask_pid, health, impostor, masters_serving
from testkit.mailbox import Mailbox
from testkit.tasks import task_states

pytestmark = pytest.mark.integration


DOWN = "Flask monitor DOWN"
BACK = "Flask monitor back"


def run_monitor(stack: EmbeddedStack) -> tuple[dict, dict]:
    # A patient client: a machine busy with other work can keep the api-server silent for long.
    client = stack.client(timeout=60)
    run = client.trigger(MONITOR, {})
    run = client.wait_for_run(MONITOR, run["dag_run_id"], timeout=180)
    return run, task_states(client, MONITOR, run["dag_run_id"])


def subjects(mailbox: Mailbox, text: str) -> list[str]:
    return [m["Subject"] for m in mailbox.messages() if text in m["Subject"]]


def test_an_outage_mails_once_and_its_end_once(
    embedded_stack: EmbeddedStack, mailbox: Mailbox
) -> None:
    ProcessLauncher.from_env(embedded_stack.env).stop()
    # Something else holds the port and never answers: no relaunch can succeed.
    blocker = socket.create_server(("127.0.0.1", embedded_stack.ports.flask))
    try:
        mailbox.clear()
        for attempt in range(2):
            run, tasks = run_monitor(embedded_stack)
            assert run["state"] == "failed", (attempt, tasks)
            assert "failed" in (tasks["relaunch_flask"], tasks["verify_flask_health"]), tasks
        down = mailbox.wait_for(lambda m: DOWN in m["Subject"])
        assert str(embedded_stack.ports.flask) in down["Subject"]
        assert "verify_flask_health" in down["HTML"] or "relaunch_flask" in down["HTML"]
        assert subjects(mailbox, DOWN) == [down["Subject"]]  # two failed attempts, one mail
    finally:
        blocker.close()

    run, tasks = run_monitor(embedded_stack)

    assert run["state"] == "success", tasks
    assert health(embedded_stack) == 200
    assert masters_serving(embedded_stack.ports.flask) == [flask_pid(embedded_stack)]
    mailbox.wait_for(lambda m: BACK in m["Subject"])
    run, tasks = run_monitor(embedded_stack)  # healthy now: nothing more to say
    assert tasks["relaunch_flask"] == "skipped"
    assert len(subjects(mailbox, BACK)) == 1 and len(subjects(mailbox, DOWN)) == 1


def test_an_impostor_on_the_port_counts_as_down_and_mails_once(
    embedded_stack: EmbeddedStack, mailbox: Mailbox
) -> None:
    """Another user's program takes the port while the monitor is down and answers /health
    like the monitor: the monitor DAG does not take it for the service, and mails once,
    naming the port."""
    launcher = ProcessLauncher.from_env(embedded_stack.env)
    port = embedded_stack.ports.flask
    launcher.stop()
    try:
        with impostor(port, {"status": "ok", "airflow": {"reachable": True}}):
            mailbox.clear()
            for attempt in range(2):
                run, tasks = run_monitor(embedded_stack)
                assert run["state"] == "failed", (attempt, tasks)
                assert tasks["relaunch_flask"] == "failed", tasks
            down = mailbox.wait_for(lambda m: DOWN in m["Subject"])
            assert str(port) in down["Subject"]
            assert f"port 127.0.0.1:{port} is held by another program" in down["HTML"]
            assert subjects(mailbox, DOWN) == [down["Subject"]]
    finally:
        run, tasks = run_monitor(embedded_stack)
    assert run["state"] == "success", tasks
    assert masters_serving(port) == [flask_pid(embedded_stack)]
    mailbox.wait_for(lambda m: BACK in m["Subject"])
