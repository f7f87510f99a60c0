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
import subprocess
import sys
import threading
import time
import urllib.request
from base64 import urlsafe_b64encode
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from adclick.contract import MODELS_DIR
from adclick.defaults import MLFLOW_NO_TELEMETRY
from adclick_contract import APPROVER_USERNAME, MODEL_SERVER_BIND, MONITOR_USERNAME
from embedded.mlflow_server import DEFAULT_PORT as MLFLOW_PORT
from embedded.mlflow_server import REPO_ROOT, Account, MlflowServer, write_private

if TYPE_CHECKING:
    from airflow_rest import AirflowClient
    from flask_launcher.process import ProcessLauncher


# What a component gets to stop after SIGTERM; then every process of the stack is SIGKILLed.
# REPO_ROOT and write_private: where callers find them.
__all__ = ["REPO_ROOT", "EmbeddedStack", "Ports", "write_private"]

STOP_GRACE_S = 5.0
KILL_WAIT_S = 5.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

ADMIN_USER = "admin"
SECRETS_FILE = "secrets.json"  # in the stack's home, mode 0600: every generated secret
VIEWER_USER = MONITOR_USERNAME
APPROVER_USER = APPROVER_USERNAME  # role `user`: may answer approvals, not administer
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Per REST call: on a loaded machine the api-server may keep an answer for many seconds.
CLIENT_TIMEOUT_S = 60.0
# Per readiness poll: one that hangs is retried rather than waited out past the deadline.
POLL_TIMEOUT_S = 10.0


@dataclass
class Ports:
    api: int = 8080
    flask: int = 5000
    smtp: int = 1025
    mail_http: int = 8025
    mlflow: int = MLFLOW_PORT
    # The log servers the scheduler and the triggerer start: Airflow's fixed defaults would
    # collide between two stacks on one machine, and the loser's would exit silently.
    worker_logs: int = 8793
    trigger_logs: int = 8794
    model_server: int = int(MODEL_SERVER_BIND.rpartition(":")[2])


def _fernet_key() -> str:
    return urlsafe_b64encode(secrets.token_bytes(32)).decode()


def load_or_create_secrets(home: Path) -> dict[str, str]:
    """Secrets and passwords are generated on first start and reused afterwards.

    They live in AIRFLOW_HOME (git-ignored), never in the repository.
    """
    path = home / SECRETS_FILE
    generators = {
        "fernet_key": _fernet_key,
        "jwt_secret": lambda: secrets.token_urlsafe(32),
        "api_secret_key": lambda: secrets.token_urlsafe(32),
        "admin_password": lambda: secrets.token_urlsafe(12),
        "viewer_password": lambda: secrets.token_urlsafe(12),
        "approver_password": lambda: secrets.token_urlsafe(12),
    }
    values = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in generators if not values.get(name)]
    if missing:  # a fresh home, or one made before an account was added
        make_private_dir(home)
        values.update({name: generators[name]() for name in missing})
        write_private(path, json.dumps(values, indent=2))
    return values


def make_private_dir(path: Path) -> None:
    """``path`` as a directory only its owner can enter (made so, never loosened later)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)  # an existing home, made with wider modes


@dataclass
class EmbeddedStack:
    """Configuration plus lifecycle of one embedded stack rooted at ``home``."""

    home: Path
    ports: Ports = field(default_factory=Ports)
    model_dir: Path = REPO_ROOT / "model"
    data_dir: Path = REPO_ROOT / "data"
    dags_dir: Path = REPO_ROOT / "dags"
    # The model modules, one training DAG each; by default dags/models/ beside the DAGs.
    models_dir: Path | None = None
    artifact_dir: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    log_level: str = "INFO"
    # A tracking server someone else runs (and stops); by default the stack starts its own.
    mlflow_server: MlflowServer | None = None

    def __post_init__(self) -> None:
        self.home = self.home.resolve()
        self._owns_mlflow = self.mlflow_server is None
        if self.mlflow_server is None:
            self.mlflow_server = MlflowServer(self.home / "mlflow", self.ports.mlflow)
        self.artifact_dir = (self.artifact_dir or self.home / "artifacts").resolve()
        self.secrets = load_or_create_secrets(self.home)
        self.admin = Account(ADMIN_USER, self.secrets["admin_password"])
        self.viewer = Account(VIEWER_USER, self.secrets["viewer_password"])
        self.approver = Account(APPROVER_USER, self.secrets["approver_password"])
        self.env = self._build_env()
        self._procs: dict[str, subprocess.Popen] = {}
        self._groups: set[int] = set()  # every group started, also of components started again

    # -- configuration -------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def flask_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.flask}"

    @property
    def model_server_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.model_server}"

    @property
    def mail_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.mail_http}"

    @property
    def mlflow_url(self) -> str:
        return self.mlflow_server.url

    @property
    def secrets_path(self) -> Path:
        return self.home / SECRETS_FILE

    @property
    def mail_dir(self) -> Path:
        return self.home / "mail"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def metadata_db_url(self) -> str:
        return f"sqlite:///{self.home / 'airflow.db'}"

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
            if not k.startswith(
                ("AIRFLOW", "ADCLICK_", "MONITOR_", "FLASK_MONITOR_", "MODEL_SERVER_", "MLFLOW_")
            )
        }
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW_CONFIG": str(REPO_ROOT / "config" / "airflow.cfg"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_dir.resolve()),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_db_url,
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
                "ADCLICK_METADATA_DB_URL": self.metadata_db_url,
                "ADCLICK_FLASK_MONITOR_URL": self.flask_url,
                "MONITOR_AIRFLOW_URL": self.api_url,
                "MONITOR_AIRFLOW_USERNAME": self.viewer.username,
                "MONITOR_AIRFLOW_PASSWORD": self.viewer.password,
                "MLFLOW_TRACKING_URI": self.mlflow_url,
                # The tasks record runs and register models as MLflow's writer account.
                **self.mlflow_server.account("writer").env(),
                **MLFLOW_NO_TELEMETRY,  # the scheduler imports MLflow to preload it
                "FLASK_LAUNCHER": "process",
                "FLASK_MONITOR_BIND": f"127.0.0.1:{self.ports.flask}",
                "FLASK_MONITOR_PIDFILE": str(self.home / "flask-monitor.pid"),
                "FLASK_MONITOR_LOGFILE": str(self.log_dir / "flask-monitor.log"),
                "FLASK_MONITOR_HEALTH_URL": f"{self.flask_url}/health",
                # The model service: started and kept up by its watchdog DAG, as the monitor.
                "MODEL_SERVER_LAUNCHER": "process",
                "MODEL_SERVER_BIND": f"127.0.0.1:{self.ports.model_server}",
                "MODEL_SERVER_PIDFILE": str(self.home / "model-server.pid"),
                "MODEL_SERVER_LOGFILE": str(self.log_dir / "model-server.log"),
                "MODEL_SERVER_HEALTH_URL": f"{self.model_server_url}/health",
                "MODEL_SERVER_MODEL_ROOT": str(self.model_dir.resolve()),
                "MODEL_SERVER_MODELS_DIR": str(self.models.resolve()),
                "MODEL_SERVER_SMTP_HOST": "127.0.0.1",
                "MODEL_SERVER_SMTP_PORT": str(self.ports.smtp),
                "MODEL_SERVER_MAIL_FROM": "model-server@adclick.local",
                # config/ holds airflow_local_settings.py; Airflow only looks for it in
                # $AIRFLOW_HOME/config, which here is outside the repository.
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(REPO_ROOT / "config"), env.get("PYTHONPATH", "")) if p
                ),
            }
        )
        if self.models_dir is not None:
            env["ADCLICK_MODELS_DIR"] = str(self.models_dir.resolve())
        env.update(self.extra_env)
        return env

    @property
    def models(self) -> Path:
        """The folder the stack's training DAGs come from."""
        return self.models_dir or self.dags_dir / MODELS_DIR

    def client(self, role: str = "admin", timeout: float = CLIENT_TIMEOUT_S) -> AirflowClient:
        """A REST client as ``admin``, ``approver`` or the read-only viewer; ``timeout`` s
        per call."""
        from airflow_rest import AirflowClient

        account = {"admin": self.admin, APPROVER_USER: self.approver}.get(role, self.viewer)
        return AirflowClient(self.api_url, account.username, account.password, timeout=timeout)

    # -- lifecycle ------------------------------------------------------------------------
    def prepare(self) -> None:
        """Directories, the password file and the database schema (idempotent)."""
        make_private_dir(self.home)
        for directory in (
            self.log_dir,
            self.mail_dir,
            self.artifact_dir,
            self.model_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        passwords = self.home / "simple_auth_manager_passwords.json"
        write_private(
            passwords,
            json.dumps(
                {
                    self.admin.username: self.admin.password,
                    self.viewer.username: self.viewer.password,
                    self.approver.username: self.approver.password,
                }
            ),
        )
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
        for name in self._components():
            self.spawn(name)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _components(self) -> tuple[str, ...]:
        return ("mailcatcher", *(["mlflow"] if self._owns_mlflow else []), *AIRFLOW_COMPONENTS)

    def _command(self, name: str) -> list[str]:
        if name == "mlflow":
            return self.mlflow_server.command()
        if name != "mailcatcher":
            return [sys.executable, "-m", "embedded.airflow_command", name]
        return [
            sys.executable,
            "-m",
            "embedded.mailcatcher",
            "--smtp-port",
            str(self.ports.smtp),
            "--http-port",
            str(self.ports.mail_http),
            "--store",
            str(self.mail_dir),
        ]

    def spawn(self, name: str) -> None:
        """Start (or start again) one component, ``mailcatcher`` or one of AIRFLOW_COMPONENTS,
        in its own process group, logging to ``<log_dir>/<name>.log``."""
        argv = self._command(name)
        log = (self.log_dir / f"{name}.log").open("ab")
        with _signals_deferred():  # a Ctrl-C right after the fork must not lose the child
            self._procs[name] = subprocess.Popen(
                argv,
                env=self.mlflow_server.env() if name == "mlflow" else self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session (session id == pid): every process it ever starts, task
                # runners in their own process groups included, carries that id, which is
                # how stop() finds them all.
                start_new_session=True,
            )
            self._groups.add(self._procs[name].pid)
        log.close()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = "not started"
        while time.monotonic() < deadline:
            self._raise_if_exited()
            try:
                health = self.client(timeout=POLL_TIMEOUT_S).health()
                urllib.request.urlopen(f"{self.mail_url}/livez", timeout=2).read()
                if not self.mlflow_server.healthy():
                    last_error = f"MLflow server at {self.mlflow_url} not healthy yet"
                elif health.get("scheduler", {}).get("status") == "healthy":
                    return
                else:
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

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Stop every process of the stack within about ``grace`` + a second or two.

        SIGTERM to each component, the Flask monitor and the model service; after ``grace``
        seconds SIGKILL to every process left in the sessions the components were started in
        (task runners, a gunicorn a relaunch was starting), until none is left; then the
        services, if another stack instance started them. Only processes that are provably
        ours are hit.
        """
        launchers = self.service_launchers()
        services = [launcher.running_pid() for launcher in launchers]
        for proc in self._procs.values():
            if proc.poll() is None:  # an unreaped leader: its group id (== pid) is ours
                _signal_group(proc.pid, signal.SIGTERM)
        for pid in services:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
        self._kill_sessions()
        for proc in self._procs.values():
            proc.wait()
        for launcher in launchers:
            launcher.stop_timeout = 0  # had its SIGTERM: a master still there is hung
            launcher.stop()
        self._procs.clear()
        self._groups.clear()

    def _kill_sessions(self) -> None:
        """SIGKILL every live process in a session we started until there is none: nothing
        killed here can start anything that survives."""
        deadline = time.monotonic() + KILL_WAIT_S
        while left := session_members(self._groups):
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes of the stack survive SIGKILL: {left}")
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def service_launchers(self) -> list[ProcessLauncher]:
        """The launchers of the services the watchdogs start: the Flask monitor's, the model
        service's."""
        from flask_launcher.process import ProcessLauncher
        from flask_launcher.services import FLASK_MONITOR, MODEL_SERVER

        return [
            ProcessLauncher.from_env(self.env, service) for service in (FLASK_MONITOR, MODEL_SERVER)
        ]

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, signum: int) -> None:
    """Every process started in the session led by ``pgid``, even once the leader is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def session_members(sessions: set[int]) -> list[int]:
    """Live (non-zombie) processes whose session id is one of ``sessions``, this one aside.

    A session id stays taken while any process of it lives, so it cannot name a stranger.
    """
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X") and int(fields[3]) in sessions:
            members.append(int(proc.name))
    return members


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold the stop signals back until the block is done, then deliver them as they came.

    Only the main thread receives signals; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda n, _: caught.append(n)) for signum in STOP_SIGNALS
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in caught:
            os.kill(os.getpid(), signum)
