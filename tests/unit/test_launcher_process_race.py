"""Two task processes relaunching the Flask monitor at the same moment start one gunicorn
master, not two: the check-and-start is serialised across processes (a file lock), which a
lock inside one process cannot do.

Each racer is a separate Python process; they are released together once both are ready, so
both find the service down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from embedded.stack import REPO_ROOT
from flask_launcher import launcher_from_env, wait_healthy
from testkit.flask_service import masters_serving
from testkit.ports import free_port
from testkit.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

RACERS = 3
RACER = textwrap.dedent(
    """
    import os, sys
    from flask_launcher import launcher_from_env

    launcher = launcher_from_env(os.environ)
    print("ready", flush=True)
    sys.stdin.readline()  # the start signal
    print(launcher.ensure_running(), flush=True)
    """
)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def env(tmp_path: Path, port: int) -> Iterator[dict[str, str]]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
        "FLASK_MONITOR_PIDFILE": str(tmp_path / "flask-monitor.pid"),
        "FLASK_MONITOR_LOGFILE": str(tmp_path / "flask-monitor.log"),
        "FLASK_MONITOR_BIND": f"127.0.0.1:{port}",
        "FLASK_MONITOR_WORKERS": "1",
        "MONITOR_AIRFLOW_URL": f"http://127.0.0.1:{free_port()}",
        "PYTHONPATH": os.pathsep.join(
            [str(REPO_ROOT / "plugins"), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
        ),
    }
    yield env
    launcher_from_env(env).stop()
    for pid in masters_serving(port):  # whatever a failed run left behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def test_racing_processes_start_exactly_one_master(env: dict[str, str], port: int) -> None:
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(RACERS)
    ]
    for racer in racers:
        assert racer.stdout.readline().strip() == "ready"
    for racer in racers:  # release them together
        racer.stdin.write("go\n")
        racer.stdin.flush()
    outcomes = sorted(racer.communicate(timeout=120)[0].strip() for racer in racers)

    assert outcomes == ["already-running"] * (RACERS - 1) + ["started"]
    master = launcher_from_env(env).running_pid()
    assert master is not None
    assert wait_healthy(f"http://127.0.0.1:{port}/health", timeout=60)["healthy"]
    assert wait_until(lambda: masters_serving(port) == [master], 30, "a single master")
