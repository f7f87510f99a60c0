"""Port hijack: while the Flask monitor is down, another program (of another user, where this
runs as root) takes its port and answers /health with ``{"status": "ok"}``, even with a proof
it overheard from the real service. The launcher's health checks call that down, and the
launcher refuses to relaunch onto the taken port, naming it."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from adclick_contract.instance import proves
from flask_launcher import check_health, launcher_from_env, wait_healthy
from flask_launcher.health import FOREIGN
from flask_launcher.process import PortTaken, ProcessLauncher, group_members
from monitor import create_app
from testkit.flask_service import impostor, listening_holders, masters_serving
from testkit.ports import free_port
from testkit.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[ProcessLauncher]:
    port = free_port()
    env = {
        **os.environ,
        "FLASK_MONITOR_PIDFILE": str(tmp_path / "flask-monitor.pid"),
        "FLASK_MONITOR_BIND": f"127.0.0.1:{port}",
        "MONITOR_AIRFLOW_URL": f"http://127.0.0.1:{free_port()}",
        "FLASK_LAUNCHER": "process",
    }
    launch = launcher_from_env(env)
    assert isinstance(launch, ProcessLauncher)
    yield launch
    launch.stop()
    for pid in masters_serving(port):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def crash(launcher: ProcessLauncher) -> None:
    """The service dies (master and workers at once) and its port is free."""
    pid = launcher.running_pid()
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: not group_members(pid), 20, "the killed service gone")
    wait_until(lambda: not listening_holders(launcher.address[1]), 20, "the port free")


def test_the_service_it_started_proves_its_key(launcher: ProcessLauncher) -> None:
    launcher.ensure_running()
    key = launcher.instance_key()
    assert key
    assert oct(launcher.keyfile.stat().st_mode & 0o777) == "0o600"

    health = wait_healthy(launcher.health_url, timeout=30, key=key)

    assert health["healthy"], health
    assert check_health(launcher.health_url, key="another launch's key")["error"] == FOREIGN


def test_an_impostor_on_the_port_is_down_and_named(launcher: ProcessLauncher) -> None:
    launcher.ensure_running()
    key = launcher.instance_key()
    assert wait_healthy(launcher.health_url, timeout=30, key=key)["healthy"]
    overheard = check_health(f"{launcher.health_url}?challenge=abc", key=key)["body"]
    crash(launcher)

    with impostor(launcher.address[1], overheard):
        # Without the key, the impostor's answer passes for the service (what the key is for).
        assert check_health(launcher.health_url)["healthy"]
        health = check_health(launcher.health_url, key=key)
        assert not health["healthy"] and health["error"] == FOREIGN

        with pytest.raises(PortTaken, match=f"port 127.0.0.1:{launcher.address[1]} is held"):
            launcher.ensure_running()
        assert launcher.running_pid() is None  # nothing was started onto the taken port

    # Once the port is free again, the next relaunch brings the real service back.
    assert launcher.ensure_running() in ("started", "restarted")
    assert wait_healthy(launcher.health_url, timeout=30, key=launcher.instance_key())["healthy"]
    assert launcher.instance_key() != key  # a fresh key for each start


def test_health_proves_the_key_only_to_a_fitting_challenge() -> None:
    config = {"AIRFLOW_URL": f"http://127.0.0.1:{free_port()}", "AIRFLOW_PASSWORD": "x"}
    keyed = create_app({**config, "INSTANCE_KEY": "k"}).test_client()

    answer = keyed.get("/health?challenge=c1").get_json()

    assert proves("k", "c1", answer["proof"]) and not proves("k", "c2", answer["proof"])
    assert "proof" not in keyed.get("/health").get_json()
    assert "proof" not in keyed.get(f"/health?challenge={'c' * 129}").get_json()
    assert "proof" not in create_app(config).test_client().get("/health?challenge=c1").get_json()
