"""The monitor DAG brings a killed Flask service back, with exactly one gunicorn master."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests

from embedded.stack import EmbeddedStack

pytestmark = pytest.mark.integration

MONITOR = "ad_click_monitor"


def gunicorn_masters(pidfile: str) -> list[int]:
    """gunicorn masters of this stack: gunicorn processes started with our pidfile setting
    whose parent is not a gunicorn process (that would make them workers)."""
    masters = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes().split(b"\0")
            ppid = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
            parent = Path(f"/proc/{ppid}/cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        ours = f"FLASK_MONITOR_PIDFILE={pidfile}".encode() in environ
        if ours and b"gunicorn" in cmdline and b"gunicorn" not in parent:
            masters.append(int(proc.name))
    return masters


def master_pid(stack: EmbeddedStack) -> int:
    return int(Path(stack.env["FLASK_MONITOR_PIDFILE"]).read_text())


def health(stack: EmbeddedStack) -> int | None:
    try:
        return requests.get(f"{stack.flask_url}/health", timeout=2).status_code
    except requests.RequestException:
        return None


def run_monitor(stack: EmbeddedStack) -> dict:
    client = stack.client("admin")
    run = client.trigger(MONITOR, {})
    return client.wait_for_run(MONITOR, run["dag_run_id"], timeout=120)


def test_killed_flask_is_relaunched_once(embedded_stack: EmbeddedStack) -> None:
    first = run_monitor(embedded_stack)  # launches it if nothing did yet
    assert first["state"] == "success", first
    assert health(embedded_stack) == 200
    master = master_pid(embedded_stack)

    os.kill(master, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while health(embedded_stack) is not None and time.monotonic() < deadline:
        time.sleep(0.2)  # workers notice their master is gone and exit
    assert health(embedded_stack) is None

    run = run_monitor(embedded_stack)

    assert run["state"] == "success", run
    tasks = {
        t["task_id"]: t["state"]
        for t in embedded_stack.client().task_instances(MONITOR, run["dag_run_id"])
    }
    assert tasks["relaunch_flask"] == "success" and tasks["verify_flask_health"] == "success"
    assert health(embedded_stack) == 200
    assert master_pid(embedded_stack) != master
    assert gunicorn_masters(embedded_stack.env["FLASK_MONITOR_PIDFILE"]) == [
        master_pid(embedded_stack)
    ]


def test_healthy_flask_is_left_alone(embedded_stack: EmbeddedStack) -> None:
    if health(embedded_stack) != 200:
        assert run_monitor(embedded_stack)["state"] == "success"
    master = master_pid(embedded_stack)

    run = run_monitor(embedded_stack)

    tasks = {
        t["task_id"]: t["state"]
        for t in embedded_stack.client().task_instances(MONITOR, run["dag_run_id"])
    }
    assert tasks["relaunch_flask"] == "skipped"
    assert master_pid(embedded_stack) == master
