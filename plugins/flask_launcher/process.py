"""Start the Flask monitor as a detached gunicorn process (the embedded stack's launcher).

Idempotent: a live gunicorn master named in the pidfile means nothing to do. An exclusive
file lock around check-and-start means callers racing each other (two monitor DAG runs, or
threads) never start two masters. It returns as soon as gunicorn has written its pidfile;
whether the service answers is for ``wait_healthy`` to tell.

Environment (``ProcessLauncher.from_env``):
    FLASK_MONITOR_PIDFILE   default $AIRFLOW_HOME/flask-monitor.pid (AIRFLOW_HOME: ~/airflow)
    FLASK_MONITOR_LOGFILE   gunicorn's stdout/stderr; default next to the pidfile
    FLASK_MONITOR_BIND      default 127.0.0.1:5000
    FLASK_MONITOR_PYTHON    an interpreter with the monitor package installed; default this one
The service gets MONITOR_*, FLASK_MONITOR_* and the basics (PATH, locale, proxies, CA
bundles) from that environment, and nothing else: Airflow's secrets stay in Airflow.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

APP_SPEC = "monitor:create_app()"
PROC_NAME = b"flask-monitor"  # gunicorn.conf.py's proc_name, in the master's title
PIDFILE_TIMEOUT_S = 10.0
PASSED_PREFIXES = ("MONITOR_", "FLASK_MONITOR_", "GUNICORN_", "LC_", "PYTHON")
PASSED_NAMES = frozenset(
    [
        "PATH",
        "HOME",
        "USER",
        "LANG",
        "TZ",
        "TMPDIR",
        "VIRTUAL_ENV",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    ]
)


class LaunchError(RuntimeError):
    """gunicorn did not start; the message ends with the tail of its log."""


class ProcessLauncher:
    """Keeps one gunicorn master serving ``monitor:create_app()`` on ``bind``."""

    def __init__(
        self,
        pidfile: Path,
        logfile: Path,
        bind: str = "127.0.0.1:5000",
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.pidfile = Path(pidfile).resolve()
        self.logfile = Path(logfile).resolve()
        self.lockfile = self.pidfile.with_name(self.pidfile.name + ".lock")
        self.bind = bind
        self.python = python
        self.env = dict(os.environ if env is None else env)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProcessLauncher:
        state = Path(env.get("AIRFLOW_HOME") or "~/airflow").expanduser()  # Airflow's default
        pidfile = Path(env.get("FLASK_MONITOR_PIDFILE") or state / "flask-monitor.pid")
        return cls(
            pidfile=pidfile,
            logfile=Path(env.get("FLASK_MONITOR_LOGFILE") or pidfile.with_suffix(".log")),
            bind=env.get("FLASK_MONITOR_BIND") or "127.0.0.1:5000",
            python=env.get("FLASK_MONITOR_PYTHON") or sys.executable,
            env=env,
        )

    def describe(self) -> str:
        return f"gunicorn on {self.bind} (pidfile {self.pidfile}, log {self.logfile})"

    def running_pid(self) -> int | None:
        """The master's pid if the pidfile names a live gunicorn master of this service."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _is_our_master(pid) else None

    def ensure_running(self) -> str:
        """``already-running``, ``started``, or ``restarted`` (a dead master was replaced)."""
        with self._exclusive():
            if self.running_pid() is not None:
                return "already-running"
            stale = self.pidfile.exists()
            self.pidfile.unlink(missing_ok=True)  # else gunicorn refuses a reused pid in it
            self._start()
            return "restarted" if stale else "started"

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM the master (gunicorn stops its workers gracefully); SIGKILL its process
        group after ``timeout``. False if nothing was running."""
        with self._exclusive():
            pid = self.running_pid()
            if pid is None:
                return False
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _is_our_master(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _is_our_master(pid):
                with suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)  # its own session: group id == pid
            self.pidfile.unlink(missing_ok=True)
            return True

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        self.lockfile.parent.mkdir(parents=True, exist_ok=True)
        with self.lockfile.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            yield

    def _start(self) -> None:
        env = service_env(self.env)
        app_dir = monitor_app_dir()
        env["FLASK_MONITOR_PIDFILE"] = str(self.pidfile)
        env["FLASK_MONITOR_BIND"] = self.bind
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        command = [self.python, "-m", "gunicorn", "-c", str(app_dir / "gunicorn.conf.py"), APP_SPEC]
        with self.logfile.open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=app_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the task that launched it, no terminal
            )
        self._wait_for_pidfile(process)

    def _wait_for_pidfile(self, process: subprocess.Popen) -> None:
        """gunicorn writes its pidfile before binding: seconds at most, unless it crashed."""
        deadline = time.monotonic() + PIDFILE_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LaunchError(
                    f"gunicorn exited with code {process.returncode}: {self._log_tail()}"
                )
            if self.running_pid() == process.pid:
                return
            time.sleep(0.05)
        process.kill()
        process.wait()
        raise LaunchError(
            f"gunicorn wrote no pidfile within {PIDFILE_TIMEOUT_S:g} s: {self._log_tail()}"
        )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.logfile})"
        return "\n".join(text.splitlines()[-lines:])


def monitor_app_dir() -> Path:
    """flask_monitor/, where gunicorn.conf.py sits beside the installed ``monitor`` package."""
    spec = importlib.util.find_spec("monitor")
    if spec is None or spec.origin is None:
        raise LaunchError(f"the monitor package is not installed for {sys.executable}")
    return Path(spec.origin).parents[1]


def service_env(env: Mapping[str, str]) -> dict[str, str]:
    """The part of ``env`` the Flask service needs; never Airflow's keys and passwords."""
    return {
        key: value
        for key, value in env.items()
        if key in PASSED_NAMES or key.startswith(PASSED_PREFIXES)
    }


def _is_our_master(pid: int) -> bool:
    """Alive (not a zombie), gunicorn, serving this app, and not one of its workers."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    if b"gunicorn" not in cmdline or b"gunicorn: worker" in cmdline:
        return False
    return PROC_NAME in cmdline or APP_SPEC.encode() in cmdline
