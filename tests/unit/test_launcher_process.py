"""The process launcher for real: gunicorn started, found, killed and restarted, never twice.

The service points at a closed port (Airflow down), which /health reports with a 200.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flask_launcher import check_health, launcher_from_env, wait_healthy
from flask_launcher.process import LaunchError, ProcessLauncher, group_members, proc_stat
from testkit.flask_service import masters_serving
from testkit.ports import free_port
from testkit.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


def pid_alive(pid: int) -> bool:
    """Running or stopped, not a zombie."""
    fields = proc_stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def wait_for_single_master(port: int, pid: int, timeout: float = 30.0) -> None:
    """After a kill -9, orphaned workers keep the old socket for a moment: wait them out."""
    wait_until(lambda: masters_serving(port) == [pid], timeout, f"only master {pid}", poll=0.2)
    assert masters_serving(port) == [pid]


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[ProcessLauncher]:
    port = free_port()
    env = {
        **os.environ,
        "FLASK_MONITOR_PIDFILE": str(tmp_path / "run" / "flask-monitor.pid"),
        "FLASK_MONITOR_LOGFILE": str(tmp_path / "logs" / "flask-monitor.log"),
        "FLASK_MONITOR_BIND": f"127.0.0.1:{port}",
        "FLASK_MONITOR_WORKERS": "1",
        "MONITOR_AIRFLOW_URL": f"http://127.0.0.1:{free_port()}",
    }
    env.pop("FLASK_LAUNCHER", None)
    launch = launcher_from_env(env)
    assert isinstance(launch, ProcessLauncher)
    launch.port = port
    yield launch
    launch.stop()
    for pid in masters_serving(port):  # whatever a failed test left behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def test_starts_once_then_reports_already_running(launcher) -> None:
    assert launcher.ensure_running() == "started"
    pid = launcher.running_pid()

    health = wait_healthy(launcher.health_url, timeout=30)

    assert health["healthy"], health
    assert health["body"]["airflow"]["reachable"] is False
    assert launcher.ensure_running() == "already-running"
    assert launcher.running_pid() == pid
    wait_for_single_master(launcher.port, pid)
    assert "Booting worker" in launcher.logfile.read_text()


def test_a_killed_master_is_restarted(launcher) -> None:
    launcher.ensure_running()
    old = launcher.running_pid()
    assert wait_healthy(launcher.health_url, timeout=30)["healthy"]

    os.kill(old, signal.SIGKILL)
    # SIGKILL is delivered at once, the process ends a moment later.
    wait_until(lambda: launcher.running_pid() != old, 10, "the killed master to end", poll=0.05)

    assert launcher.ensure_running() == "restarted"
    new = launcher.running_pid()
    assert new is not None and new != old
    wait_for_single_master(launcher.port, new)
    assert wait_healthy(launcher.health_url, timeout=30)["healthy"]


def test_concurrent_callers_start_exactly_one_master(launcher) -> None:
    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(lambda _: launcher.ensure_running(), range(4)))

    assert outcomes == ["already-running"] * 3 + ["started"]
    wait_for_single_master(launcher.port, launcher.running_pid())
    assert wait_healthy(launcher.health_url, timeout=30)["healthy"]


def test_a_stale_pidfile_naming_another_process_is_replaced(launcher) -> None:
    launcher.pidfile.parent.mkdir(parents=True)
    launcher.pidfile.write_text(f"{os.getpid()}\n")  # alive, but not gunicorn

    assert launcher.ensure_running() == "restarted"

    assert launcher.running_pid() not in (None, os.getpid())
    assert wait_healthy(launcher.health_url, timeout=30)["healthy"]


def test_a_service_that_stopped_answering_is_replaced(launcher) -> None:
    """Master and worker alive but frozen (SIGSTOP, as in a deadlock): no answer, so the
    launcher stops it (SIGKILL after the grace period) and starts one new master."""
    launcher.ensure_running()
    old = launcher.running_pid()
    assert wait_healthy(launcher.health_url, timeout=30)["healthy"]
    frozen = group_members(old)
    assert len(frozen) >= 2  # master and worker
    os.killpg(old, signal.SIGSTOP)
    assert not check_health(launcher.health_url, timeout=1)["healthy"]

    assert launcher.ensure_running() == "restarted"

    new = launcher.running_pid()
    assert new not in (None, old)
    assert not any(Path(f"/proc/{pid}").exists() and pid_alive(pid) for pid in frozen)
    assert wait_healthy(launcher.health_url, timeout=30)["healthy"]
    wait_for_single_master(launcher.port, new)


def test_a_master_this_launcher_did_not_start_is_never_signalled(launcher, tmp_path) -> None:
    """A pidfile naming some other service's gunicorn master (a recycled pid, a copied file)
    is not taken for ours: neither stop() nor a relaunch touches that process."""
    other = ProcessLauncher(
        tmp_path / "other" / "monitor.pid",
        tmp_path / "other" / "monitor.log",
        bind=f"127.0.0.1:{free_port()}",
        env=launcher.env,
    )
    other.ensure_running()
    try:
        foreign = other.running_pid()
        launcher.pidfile.parent.mkdir(parents=True)
        launcher.pidfile.write_text(f"{foreign}\n")

        assert launcher.running_pid() is None
        assert launcher.stop() is False
        assert launcher.ensure_running() == "restarted"
        assert other.running_pid() == foreign
        assert wait_healthy(other.health_url, timeout=30)["healthy"]
    finally:
        other.stop()


def test_stop_ends_the_service(launcher) -> None:
    launcher.ensure_running()
    assert wait_healthy(launcher.health_url, timeout=30)["healthy"]

    assert launcher.stop() is True

    assert launcher.running_pid() is None and not launcher.pidfile.exists()
    assert check_health(launcher.health_url)["error"] == "connection refused"
    assert launcher.stop() is False


def test_a_gunicorn_that_cannot_start_is_reported(tmp_path: Path) -> None:
    broken = ProcessLauncher(
        tmp_path / "flask-monitor.pid",
        tmp_path / "flask-monitor.log",
        bind=f"127.0.0.1:{free_port()}",
        python=sys.executable,
        env={**os.environ, "PYTHONPATH": "", "FLASK_MONITOR_WORKERS": "not-a-number"},
    )

    with pytest.raises(LaunchError, match=r"(?s)gunicorn exited with code 1: .*not-a-number"):
        broken.ensure_running()
