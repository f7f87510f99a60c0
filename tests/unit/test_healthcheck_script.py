"""docker/airflow/healthcheck: the Airflow containers' cheap health checks (the e2e stage runs
them against the real stack; here what they read and how they fail)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "airflow" / "healthcheck"


@pytest.fixture
def healthcheck():
    loader = importlib.machinery.SourceFileLoader("healthcheck", str(SCRIPT))
    spec = importlib.util.spec_from_loader("healthcheck", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_a_setting_is_read_from_the_environment_first(healthcheck, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL", "redis://direct:6379/0")
    monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL_CMD", "echo redis://from-command:6379/0")
    assert healthcheck.airflow_setting("celery", "broker_url") == "redis://direct:6379/0"


def test_a_setting_is_read_through_its_command_like_airflow_does(healthcheck, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW__CELERY__BROKER_URL", raising=False)
    monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL_CMD", "echo redis://from-command:6379/0")
    assert healthcheck.airflow_setting("celery", "broker_url") == "redis://from-command:6379/0"


def test_a_missing_setting_is_named(healthcheck, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", raising=False)
    monkeypatch.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD", raising=False)
    with pytest.raises(SystemExit, match="AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD"):
        healthcheck.airflow_setting("database", "sql_alchemy_conn")


def test_an_unreachable_broker_is_unhealthy(tmp_path) -> None:
    assert unreachable_broker_check(tmp_path).returncode != 0


def test_an_unknown_check_shows_the_usage() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "nonsense"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "healthcheck job TriggererJob HOSTNAME" in result.stderr


def unreachable_broker_check(tmp_path: Path) -> subprocess.CompletedProcess:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{port}/0",
        "PATH": "/usr/bin:/bin",
        "TMPDIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), "celery-worker", "nowhere"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_probe_that_passed_recently_is_not_repeated(healthcheck, tmp_path) -> None:
    stamp = tmp_path / healthcheck.stamp_of(["celery-worker", "nowhere"]).name
    stamp.touch()
    assert unreachable_broker_check(tmp_path).returncode == 0


def test_an_old_pass_is_probed_again_and_a_failure_forgets_it(healthcheck, tmp_path) -> None:
    stamp = tmp_path / healthcheck.stamp_of(["celery-worker", "nowhere"]).name
    stamp.touch()
    old = time.time() - healthcheck.RECHECK_AFTER_S - 1
    os.utime(stamp, (old, old))
    assert unreachable_broker_check(tmp_path).returncode == 1
    assert not stamp.exists()
