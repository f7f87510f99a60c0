"""The embedded stack's MLflow tracking server: SQLite backend and artifacts under one directory.

It runs from a venv of its own (``.venv-mlflow``, made by ``scripts/bootstrap`` from
``requirements/mlflow.lock``): the full ``mlflow`` package pins versions Airflow's lock has
moved past. Tasks only need the client. Artifacts are served through the server
(``--serve-artifacts``), so a task needs the server's URL and a login.

MLflow's login is on (``docker/mlflow/accounts.py``): the accounts and their passwords are
generated on the first start into ``accounts.json`` in the server's home (mode 0600) and
kept: ``admin`` (MLflow's admin), ``airflow`` (the tasks' writer), ``monitor`` and ``reader``
(read-only, for the monitor and for model consumers).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adclick.defaults import MLFLOW_NO_TELEMETRY

# The repository root: the embedded stack runs from a checkout (embedded.stack re-exports it).
REPO_ROOT = Path(__file__).resolve().parents[1]
MLFLOW_VENV = REPO_ROOT / ".venv-mlflow"
# `mlflow server` that execs its web server rather than waiting for it (the image runs it too).
SERVE_SCRIPT = REPO_ROOT / "docker" / "mlflow" / "serve.py"
DEFAULT_PORT = 5001  # 5000 is the Flask monitor's
HOST = "127.0.0.1"
STOP_GRACE_S = 5.0
# The server's job runner (a process and seven queue consumers, for MLflow's GenAI features)
# does nothing for this project but take memory and start-up time.
JOB_EXECUTION = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"  # MLflow's own variable
# Nor its AI gateway. (Its assistant has no switch; it answers loopback clients only, and
# behind the login here.)
SERVER_ENV = {JOB_EXECUTION: "false", "MLFLOW_ENABLE_AI_GATEWAY": "false", **MLFLOW_NO_TELEMETRY}
# The accounts by role; MLflow's admin is created by MLflow itself from its password.
ADMIN, WRITER, MONITOR, READER = "admin", "airflow", "monitor", "reader"
ROLES = {"admin": ADMIN, "writer": WRITER, "monitor": MONITOR, "reader": READER}
# How an MLflow client is given its login (MLflow's own variables).
LOGIN_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
SESSION_KEY = "flask_secret_key"  # MLflow's login pages sign their forms with it


@dataclass(frozen=True)
class Account:
    username: str
    password: str

    def env(self) -> dict[str, str]:
        """The variables an MLflow client logs in with as this account."""
        return dict(zip(LOGIN_ENV, (self.username, self.password), strict=True))


@dataclass
class MlflowServer:
    """One ``mlflow server`` process: ``command()`` for a supervisor, or start/stop by itself."""

    home: Path
    port: int = DEFAULT_PORT
    venv: Path = MLFLOW_VENV

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home / "mlflow-server.log"

    @property
    def accounts_file(self) -> Path:
        return self.home / "accounts.json"

    def _secrets(self) -> dict[str, str]:
        """Every account's password and the web app's session key (made on first use)."""
        if not self.accounts_file.exists():
            self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
            values = {name: secrets.token_urlsafe(18) for name in ROLES.values()}
            values[SESSION_KEY] = secrets.token_urlsafe(32)
            write_private(self.accounts_file, json.dumps(values, indent=2))
        return json.loads(self.accounts_file.read_text())

    def account(self, role: str) -> Account:
        """The login of ``role``: admin, writer, monitor or reader."""
        return Account(ROLES[role], self._secrets()[ROLES[role]])

    def command(self) -> list[str]:
        executable = self.venv / "bin" / "python"
        if not (self.venv / "bin" / "mlflow").exists():
            raise RuntimeError(f"{self.venv} has no MLflow: run scripts/bootstrap to create it")
        self.home.mkdir(parents=True, exist_ok=True)
        users = {a.username: a.password for a in map(self.account, ("writer", "monitor", "reader"))}
        write_private(self.home / "users.json", json.dumps(users))
        return [
            str(executable),
            str(SERVE_SCRIPT),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--backend-store-uri",
            f"sqlite:///{self.home / 'mlflow.db'}",
            "--serve-artifacts",
            "--artifacts-destination",
            str(self.home / "artifacts"),
            # One worker is plenty for one stack's tasks and its users, and the cheapest.
            "--workers",
            "1",
        ]

    def env(self) -> dict[str, str]:
        """The server's environment: none of the caller's MLflow client settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(SERVER_ENV)
        env.update(
            {
                "ADCLICK_MLFLOW_AUTH_DB": f"sqlite:///{self.home / 'accounts.db'}",
                "MLFLOW_AUTH_CONFIG_PATH": str(self.home / "basic_auth.ini"),
                "ADCLICK_MLFLOW_USERS": str(self.home / "users.json"),
                "MLFLOW_AUTH_ADMIN_PASSWORD": self.account("admin").password,
                "MLFLOW_FLASK_SERVER_SECRET_KEY": self._secrets()[SESSION_KEY],
            }
        )
        return env

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return
            if not alive():
                raise RuntimeError(f"the MLflow server exited; see {self.log_file}")
            time.sleep(0.5)
        raise TimeoutError(f"MLflow server at {self.url} not healthy after {timeout:.0f} s")

    def start(self, timeout: float = 120.0) -> None:
        """Start the server in its own session and wait until ``/health`` answers."""
        argv = self.command()
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                argv,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self.wait_ready(timeout, alive=lambda: self._proc.poll() is None)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM to the server's session (it forks workers), SIGKILL after a grace period."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for signum, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, None)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # workers left behind by the master
            os.killpg(proc.pid, signal.SIGKILL)


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` by a file only its owner can read, created so from the first byte."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
