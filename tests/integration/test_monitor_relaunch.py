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


def listening_inode(port: int) -> str | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # 0A = LISTEN
            return fields[9]
    return None


def masters_serving(port: int) -> list[int]:
    """Processes holding the listening socket whose parent does not hold it: the masters."""
    inode = listening_inode(port)
    holders = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
        except OSError:
            continue
        if f"socket:[{inode}]" in links:
            holders.add(int(proc.name))
    parents = {
        pid: int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        for pid in holders
    }
    return sorted(pid for pid in holders if parents[pid] not in holders)


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
    assert masters_serving(embedded_stack.ports.flask) == [master_pid(embedded_stack)]


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
