"""The embedded Airflow stack: SQLite + LocalExecutor and a mail catcher, as child processes.

One class owns every process it starts, so whoever starts the stack (the run command, the
integration tests) also stops all of it, including the Flask monitor the monitor DAG launched.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from base64 import urlsafe_b64encode
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_rest import AirflowClient


REPO_ROOT = Path(__file__).resolve().parents[1]

ADMIN_USER = "admin"
VIEWER_USER = "monitor"
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


@dataclass(frozen=True)
class Account:
    username: str
    password: str


@dataclass
class Ports:
    api: int = 8080
    flask: int = 5000
    smtp: int = 1025
    mail_http: int = 8025
    # The log servers the scheduler and the triggerer start: Airflow's fixed defaults would
    # collide between two stacks on one machine, and the loser's would exit silently.
    worker_logs: int = 8793
    trigger_logs: int = 8794

    @classmethod
    def free(cls) -> Ports:
        """Ports nobody listens on, so a test stack never collides with a running one."""
        return cls(*(free_port() for _ in range(6)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fernet_key() -> str:
    return urlsafe_b64encode(secrets.token_bytes(32)).decode()


def load_or_create_secrets(home: Path) -> dict[str, str]:
    """Secrets and passwords are generated on first start and reused afterwards.

    They live in AIRFLOW_HOME (git-ignored), never in the repository.
    """
    path = home / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "fernet_key": _fernet_key(),
        "jwt_secret": secrets.token_urlsafe(32),
        "api_secret_key": secrets.token_urlsafe(32),
        "admin_password": secrets.token_urlsafe(12),
        "viewer_password": secrets.token_urlsafe(12),
    }
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


@dataclass
class EmbeddedStack:
    """Configuration plus lifecycle of one embedded stack rooted at ``home``."""

    home: Path
    ports: Ports = field(default_factory=Ports)
    model_dir: Path = REPO_ROOT / "model"
    data_dir: Path = REPO_ROOT / "data"
    dags_dir: Path = REPO_ROOT / "dags"
    artifact_dir: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        self.home = self.home.resolve()
        self.artifact_dir = (self.artifact_dir or self.home / "artifacts").resolve()
        self.secrets = load_or_create_secrets(self.home)
        self.admin = Account(ADMIN_USER, self.secrets["admin_password"])
        self.viewer = Account(VIEWER_USER, self.secrets["viewer_password"])
        self.env = self._build_env()
        self._procs: dict[str, subprocess.Popen] = {}
        self._argv: dict[str, list[str]] = {}
        self._groups: set[int] = set()  # every group started, also of components restarted

    # -- configuration -------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def flask_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.flask}"

    @property
    def mail_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.mail_http}"

    @property
    def mail_dir(self) -> Path:
        return self.home / "mail"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    def _build_env(self) -> dict[str, str]:
        smtp = {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": self.ports.smtp,
            "extra": {
                "disable_tls": True,
                "disable_ssl": True,
                "from_email": "airflow@adclick.local",
                "timeout": 10,
                "retry_limit": 1,
            },
        }
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "ADCLICK_", "MONITOR_", "FLASK_MONITOR_"))
        }
        plugins = str(REPO_ROOT / "plugins")
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW_CONFIG": str(REPO_ROOT / "config" / "airflow.cfg"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_dir.resolve()),
                "AIRFLOW__CORE__PLUGINS_FOLDER": plugins,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__CORE__FERNET_KEY": self.secrets["fernet_key"],
                "AIRFLOW__API_AUTH__JWT_SECRET": self.secrets["jwt_secret"],
                "AIRFLOW__API__SECRET_KEY": self.secrets["api_secret_key"],
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
                    self.home / "simple_auth_manager_passwords.json"
                ),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.ports.api),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.log_dir),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.ports.worker_logs),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.ports.trigger_logs),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": self.log_level,
                "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp),
                "ADCLICK_DATA_DIR": str(self.data_dir.resolve()),
                "ADCLICK_MODEL_DIR": str(self.model_dir.resolve()),
                "ADCLICK_ARTIFACT_DIR": str(self.artifact_dir),
                "ADCLICK_MONITOR_URL": self.flask_url,
                "MONITOR_AIRFLOW_URL": self.api_url,
                "MONITOR_AIRFLOW_USERNAME": self.viewer.username,
                "MONITOR_AIRFLOW_PASSWORD": self.viewer.password,
                "FLASK_LAUNCHER": "process",
                "FLASK_MONITOR_BIND": f"127.0.0.1:{self.ports.flask}",
                "FLASK_MONITOR_PIDFILE": str(self.home / "flask-monitor.pid"),
                "FLASK_MONITOR_LOGFILE": str(self.log_dir / "flask-monitor.log"),
                "FLASK_MONITOR_HEALTH_URL": f"{self.flask_url}/health",
                # config/ holds airflow_local_settings.py; Airflow only looks for it in
                # $AIRFLOW_HOME/config, which here is outside the repository.
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(REPO_ROOT / "config"), plugins, env.get("PYTHONPATH", "")) if p
                ),
            }
        )
        env.update(self.extra_env)
        return env

    def client(self, role: str = "admin") -> AirflowClient:
        from airflow_rest import AirflowClient

        account = self.admin if role == "admin" else self.viewer
        return AirflowClient(self.api_url, account.username, account.password, timeout=10.0)

    # -- lifecycle ------------------------------------------------------------------------
    def prepare(self) -> None:
        """Directories, the password file and the database schema (idempotent)."""
        for directory in (
            self.home,
            self.log_dir,
            self.mail_dir,
            self.artifact_dir,
            self.model_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        passwords = self.home / "simple_auth_manager_passwords.json"
        passwords.write_text(
            json.dumps(
                {
                    self.admin.username: self.admin.password,
                    self.viewer.username: self.viewer.password,
                }
            )
        )
        passwords.chmod(0o600)
        self._run_airflow("db", "migrate")

    def _run_airflow(self, *args: str) -> None:
        log = self.log_dir / f"airflow-{'-'.join(args)}.log"
        with log.open("ab") as out:
            result = subprocess.run(
                [sys.executable, "-m", "airflow", *args], env=self.env, stdout=out, stderr=out
            )
        if result.returncode != 0:
            raise RuntimeError(f"`airflow {' '.join(args)}` failed; see {log}")

    def start(self, timeout: float = 120.0) -> None:
        """Start every process; return once the API, the scheduler and the mail catcher answer."""
        self.prepare()
        self._spawn(
            "mailcatcher",
            [
                sys.executable,
                "-m",
                "embedded.mailcatcher",
                "--smtp-port",
                str(self.ports.smtp),
                "--http-port",
                str(self.ports.mail_http),
                "--store",
                str(self.mail_dir),
            ],
        )
        for component in AIRFLOW_COMPONENTS:
            self._spawn(component, [sys.executable, "-m", "airflow", component])
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, argv: list[str]) -> None:
        self._argv[name] = argv
        log = (self.log_dir / f"{name}.log").open("ab")
        env = dict(self.env)
        env["PYTHONPATH"] = os.pathsep.join((str(REPO_ROOT), env["PYTHONPATH"]))
        self._procs[name] = subprocess.Popen(
            argv,
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() takes the children too
        )
        self._groups.add(self._procs[name].pid)
        log.close()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = "not started"
        while time.monotonic() < deadline:
            self._raise_if_exited()
            try:
                health = self.client().health()
                urllib.request.urlopen(f"{self.mail_url}/livez", timeout=2).read()
                if health.get("scheduler", {}).get("status") == "healthy":
                    return
                last_error = f"scheduler not healthy yet: {health.get('scheduler')}"
            except Exception as exc:
                last_error = str(exc)
            time.sleep(0.5)
        raise TimeoutError(f"embedded stack not ready after {timeout:.0f} s: {last_error}")

    def _raise_if_exited(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                log = self.log_dir / f"{name}.log"
                raise RuntimeError(f"{name} exited with code {proc.returncode}; see {log}")

    def wait_for_dags(self, dag_ids: tuple[str, ...], timeout: float = 90.0) -> None:
        """The dag-processor parses files asynchronously: wait until the API knows every DAG."""
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            missing = [d for d in dag_ids if not client.dag_exists(d)]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"DAGs not parsed after {timeout:.0f} s: {missing}")
            time.sleep(0.5)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every process group we started and the Flask monitor; SIGKILL stragglers."""
        groups = sorted(self._groups)  # session leaders: group id == pid
        flask_pid = self.flask_pid()
        for pgid in [*groups, *([flask_pid] if flask_pid else [])]:
            _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self._procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        for pgid in [*groups, *([flask_pid] if flask_pid else [])]:
            _signal_group(pgid, signal.SIGKILL)  # leftovers (task runners) of a group
        self._procs.clear()
        self._groups.clear()

    # -- fault injection: what a crash or an operator does to one component ----------------
    def kill(self, name: str, signum: int = signal.SIGKILL, whole_group: bool = True) -> None:
        """Signal one component (``scheduler``, ``api-server``, ``mailcatcher``, ...) and wait
        for it to exit. ``whole_group=False`` hits its main process only, the way a crash
        does: children it forked (LocalExecutor workers, running tasks) live on."""
        proc = self._procs[name]
        if whole_group:
            _signal_group(proc.pid, signum)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signum)
        proc.wait(timeout=60)

    def restart(self, name: str) -> None:
        """Start a component again with the command line it was first started with."""
        proc = self._procs[name]
        if proc.poll() is None:
            raise RuntimeError(f"{name} is still running (pid {proc.pid})")
        self._spawn(name, self._argv[name])

    def flask_pid(self) -> int | None:
        """The Flask monitor's gunicorn master, from the pidfile the process launcher keeps."""
        try:
            return int(Path(self.env["FLASK_MONITOR_PIDFILE"]).read_text().strip())
        except (OSError, ValueError):
            return None

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, signum: int) -> None:
    """Every process started in the session led by ``pgid``, even once the leader is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
