"""Start the Flask monitor as a detached gunicorn process (the embedded stack's launcher).

Idempotent: a live master named in the pidfile means nothing to do, and an exclusive file
lock around the check-and-start means two callers at once never start two masters.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_DIR = REPO_ROOT / "flask_monitor"
PLUGINS_DIR = REPO_ROOT / "plugins"
START_TIMEOUT_S = 15.0


class LaunchError(RuntimeError):
    """gunicorn did not come up; the message ends with the tail of its log."""


class ProcessLauncher:
    def __init__(
        self,
        pidfile: Path,
        logfile: Path,
        bind: str = "127.0.0.1:5000",
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.pidfile = Path(pidfile)
        self.logfile = Path(logfile)
        self.bind = bind
        self.python = python
        self.env = dict(env if env is not None else os.environ)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProcessLauncher:
        state = Path(env.get("AIRFLOW_HOME", str(REPO_ROOT / ".local")))
        return cls(
            pidfile=Path(env.get("FLASK_MONITOR_PIDFILE", str(state / "flask-monitor.pid"))),
            logfile=Path(env.get("FLASK_MONITOR_LOGFILE", str(state / "flask-monitor.log"))),
            bind=env.get("FLASK_MONITOR_BIND", "127.0.0.1:5000"),
            python=env.get("FLASK_MONITOR_PYTHON", sys.executable),
            env=env,
        )

    def describe(self) -> str:
        return f"gunicorn on {self.bind} (pidfile {self.pidfile})"

    def running_pid(self) -> int | None:
        """The master's pid if the pidfile names a live gunicorn process."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"gunicorn" in cmdline else None

    def ensure_running(self) -> str:
        """``already-running``, ``started``, or ``restarted`` (a stale pidfile was replaced)."""
        with self._exclusive():
            if self.running_pid() is not None:
                return "already-running"
            stale = self.pidfile.exists()
            self.pidfile.unlink(missing_ok=True)
            self._start()
            return "restarted" if stale else "started"

    @contextmanager
    def _exclusive(self):
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        with open(self.pidfile.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _start(self) -> None:
        env = dict(self.env)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(APP_DIR), str(PLUGINS_DIR), env.get("PYTHONPATH", "")) if p
        )
        env["FLASK_MONITOR_PIDFILE"] = str(self.pidfile)
        env["FLASK_MONITOR_BIND"] = self.bind
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        with self.logfile.open("ab") as log:
            process = subprocess.Popen(
                [
                    self.python,
                    "-m",
                    "gunicorn",
                    "-c",
                    str(APP_DIR / "gunicorn.conf.py"),
                    "monitor:create_app()",
                ],
                cwd=APP_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the task that launched it
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LaunchError(
                    f"gunicorn exited with code {process.returncode}: {self._log_tail()}"
                )
            if self.running_pid() == process.pid:
                return
            time.sleep(0.1)
        raise LaunchError(
            f"gunicorn wrote no pidfile within {START_TIMEOUT_S:.0f} s: {self._log_tail()}"
        )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
