"""The process launcher with real gunicorn: idempotent, never two masters, restarts a dead one."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from embedded.stack import free_port
from flask_launcher import check_health, launcher_from_env, wait_healthy
from flask_launcher.process import ProcessLauncher


@pytest.fixture
def launcher(tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "FLASK_LAUNCHER": "process",
        "FLASK_MONITOR_PIDFILE": str(tmp_path / "flask.pid"),
        "FLASK_MONITOR_LOGFILE": str(tmp_path / "flask.log"),
        "FLASK_MONITOR_BIND": f"127.0.0.1:{port}",
        "MONITOR_AIRFLOW_URL": f"http://127.0.0.1:{free_port()}",  # Airflow down: still healthy
    }
    launcher = launcher_from_env(env)
    launcher.url = f"http://127.0.0.1:{port}/health"
    yield launcher
    pid = launcher.running_pid()
    if pid:
        os.killpg(pid, signal.SIGTERM)


def gunicorn_masters(launcher: ProcessLauncher) -> int:
    """Live gunicorn processes whose parent is not gunicorn, started with this pidfile."""
    count = 0
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            ppid = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
            parent = Path(f"/proc/{ppid}/cmdline").read_bytes()
            session = os.getsid(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
        pid = launcher.running_pid()
        if (
            b"gunicorn" in cmdline
            and b"gunicorn" not in parent
            and pid
            and session == os.getsid(pid)
        ):
            count += 1
    return count


def test_starts_once_then_reports_running(launcher) -> None:
    assert isinstance(launcher, ProcessLauncher)
    assert launcher.ensure_running() == "started"
    assert wait_healthy(launcher.url, timeout=15)["healthy"]
    assert launcher.ensure_running() == "already-running"
    assert gunicorn_masters(launcher) == 1


def test_concurrent_callers_start_exactly_one_master(launcher) -> None:
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: launcher.ensure_running(), range(4)))
    assert sorted(outcomes) == ["already-running"] * 3 + ["started"]
    assert gunicorn_masters(launcher) == 1


def test_killed_master_is_restarted(launcher) -> None:
    launcher.ensure_running()
    assert wait_healthy(launcher.url, timeout=15)["healthy"]
    old = launcher.running_pid()
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while check_health(launcher.url, timeout=0.5)["healthy"] and time.monotonic() < deadline:
        time.sleep(0.1)

    assert launcher.ensure_running() == "restarted"
    assert wait_healthy(launcher.url, timeout=20)["healthy"]
    assert launcher.running_pid() not in (None, old)
    assert gunicorn_masters(launcher) == 1


def test_unknown_launcher_is_refused() -> None:
    with pytest.raises(ValueError, match="FLASK_LAUNCHER"):
        launcher_from_env({"FLASK_LAUNCHER": "ssh"})
