"""embedded/airflow_command.py binds Airflow's log servers to 127.0.0.1 by replacing the
uvicorn that ``airflow.utils.serve_logs.core`` calls (Airflow has no setting for the address).
This starts the log server the way the scheduler does, in a process that imported the patch,
and fails when an Airflow upgrade moves the call so that the server binds elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from embedded.stack import REPO_ROOT
from testkit.ports import free_port

SERVE = "import embedded.airflow_command; from airflow.utils.serve_logs.core import serve_logs; "


def _listening(pid: int, port: int, deadline: float) -> list[str]:
    while time.monotonic() < deadline:
        for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
            addresses = [
                c.laddr.ip
                for c in process.net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port
            ]
            if addresses:
                return addresses
        time.sleep(0.2)
    raise AssertionError(f"no log server listened on port {port}")


def test_the_log_server_listens_on_loopback_only(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE + f"serve_logs({port})"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Airflow imports slowly on a busy machine.
        assert _listening(server.pid, port, time.monotonic() + 180) == ["127.0.0.1"]
    finally:
        server.terminate()
        server.wait(timeout=30)
