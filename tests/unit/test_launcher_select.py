"""Which launcher the monitor DAG gets, from its environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flask_launcher import launcher_from_env
from flask_launcher.process import ProcessLauncher, service_env


def test_process_is_the_default_and_reads_its_settings(tmp_path: Path) -> None:
    launcher = launcher_from_env(
        {
            "FLASK_MONITOR_PIDFILE": str(tmp_path / "m.pid"),
            "FLASK_MONITOR_LOGFILE": str(tmp_path / "m.log"),
            "FLASK_MONITOR_BIND": "127.0.0.1:5999",
            "FLASK_MONITOR_PYTHON": "/opt/python",
            "MONITOR_AIRFLOW_URL": "http://airflow:8080",
        }
    )

    assert isinstance(launcher, ProcessLauncher)
    assert launcher.pidfile == tmp_path / "m.pid" and launcher.logfile == tmp_path / "m.log"
    assert launcher.bind == "127.0.0.1:5999" and launcher.python == "/opt/python"
    assert launcher.env["MONITOR_AIRFLOW_URL"] == "http://airflow:8080"
    assert "127.0.0.1:5999" in launcher.describe()


def test_process_defaults_live_in_airflow_home(tmp_path: Path) -> None:
    launcher = launcher_from_env({"FLASK_LAUNCHER": "process", "AIRFLOW_HOME": str(tmp_path)})

    assert launcher.pidfile == tmp_path / "flask-monitor.pid"
    assert launcher.logfile == tmp_path / "flask-monitor.log"
    assert launcher.bind == "127.0.0.1:5000" and launcher.python == sys.executable


def test_unknown_launcher_is_refused() -> None:
    with pytest.raises(ValueError, match="FLASK_LAUNCHER must be one of process, docker"):
        launcher_from_env({"FLASK_LAUNCHER": "systemd"})


def test_docker_launcher_is_imported_only_when_asked_for() -> None:
    script = (
        "import sys, flask_launcher\n"
        "flask_launcher.launcher_from_env({'FLASK_LAUNCHER': 'process'})\n"
        "assert 'flask_launcher.docker' not in sys.modules, 'imported eagerly'\n"
        "launcher = flask_launcher.launcher_from_env({'FLASK_LAUNCHER': 'docker'})\n"
        "assert 'flask_launcher.docker' in sys.modules\n"
        "print(type(launcher).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "DockerLauncher"


def test_the_service_gets_its_settings_but_not_airflows_secrets() -> None:
    env = service_env(
        {
            "PATH": "/usr/bin",
            "LANG": "C.UTF-8",
            "MONITOR_AIRFLOW_PASSWORD": "viewer-pw",
            "FLASK_MONITOR_WORKERS": "2",
            "AIRFLOW__CORE__FERNET_KEY": "fernet",
            "AIRFLOW__API_AUTH__JWT_SECRET": "jwt",
            "AIRFLOW_CONN_SMTP_DEFAULT": "smtp://user:pw@mail",
            "ADCLICK_MODEL_DIR": "/models",
        }
    )

    assert env == {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "MONITOR_AIRFLOW_PASSWORD": "viewer-pw",
        "FLASK_MONITOR_WORKERS": "2",
    }
