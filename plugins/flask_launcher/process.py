"""Start a gunicorn service (the Flask monitor, the model service: :mod:`flask_launcher.services`)
as a detached process: the embedded stack's launcher.

Idempotent: a live gunicorn master named in the pidfile that answers /health means nothing
to do. One that is alive but does not answer (deadlocked, stopped) is replaced: SIGTERM, its
process group SIGKILLed after a grace period, then a new one started. An exclusive file lock
around check-and-start means callers racing each other (two monitor DAG runs, or threads)
never start two masters. It returns as soon as gunicorn has written its pidfile; whether the
new service answers is for ``wait_healthy`` to tell.

A pid read from the pidfile is only ever signalled once /proc says it is still the gunicorn
master this launcher started: the launcher records the start time of each master it starts
(``<pidfile>.start``), and a recycled pid has another.

Each start gets a fresh instance key (``<pidfile>.key``, readable by this user only; see
:mod:`adclick_contract.instance`): only the service started with it passes a health check that
asks for it. A port that another program took while the service was down is reported
(:class:`PortTaken`, naming the address) instead of being taken for the service.

Environment (``ProcessLauncher.from_env``), by the service's prefix (FLASK_MONITOR, MODEL_SERVER):
    <PREFIX>_PIDFILE       default $AIRFLOW_HOME/<proc name>.pid (AIRFLOW_HOME: ~/airflow)
    <PREFIX>_LOGFILE       gunicorn's stdout/stderr; default next to the pidfile
    <PREFIX>_BIND          default the service's (127.0.0.1:5000, 127.0.0.1:5002)
    <PREFIX>_PYTHON        an interpreter with the service's package installed; default this one
    <PREFIX>_STOP_TIMEOUT  seconds a stopping gunicorn gets before SIGKILL (default 2)
The service gets its own prefixes' variables (MONITOR_* and FLASK_MONITOR_*; MODEL_SERVER_*
and AWS_*) and the basics (PATH, locale, proxies, CA bundles) from that environment, and
nothing else: Airflow's secrets stay in Airflow.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from flask_launcher import ALREADY_RUNNING
from flask_launcher.health import STOP_TIMEOUT_S, answering
from flask_launcher.services import FLASK_MONITOR, Service

PIDFILE_TIMEOUT_S = 10.0
STARTED = "started"
RESTARTED = "restarted"
PASSED_PREFIXES = ("GUNICORN_", "LC_", "PYTHON")  # besides the service's own
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


class PortTaken(LaunchError):
    """Another program listens on the service's address: nothing is started there."""


class ProcessLauncher:
    """Keeps one gunicorn master serving ``service`` (default: the Flask monitor) on ``bind``."""

    def __init__(
        self,
        pidfile: Path,
        logfile: Path,
        bind: str | None = None,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        stop_timeout: float = STOP_TIMEOUT_S,
        service: Service = FLASK_MONITOR,
    ) -> None:
        self.service = service
        bind = bind or service.default_bind
        self.pidfile = Path(pidfile).resolve()
        self.logfile = Path(logfile).resolve()
        self.lockfile = self.pidfile.with_name(self.pidfile.name + ".lock")
        self.startfile = self.pidfile.with_name(self.pidfile.name + ".start")
        self.keyfile = self.pidfile.with_name(self.pidfile.name + ".key")
        self.bind = bind
        self.python = python
        self.env = dict(os.environ if env is None else env)
        self.stop_timeout = stop_timeout
        host, _, port = bind.rpartition(":")
        self.address = (host.strip("[]") or "0.0.0.0", int(port))
        if host in ("", "0.0.0.0", "[::]"):
            host = "127.0.0.1"
        self.health_url = f"http://{host}:{port}/health"

    @classmethod
    def from_env(cls, env: Mapping[str, str], service: Service = FLASK_MONITOR) -> ProcessLauncher:
        state = Path(env.get("AIRFLOW_HOME") or "~/airflow").expanduser()  # Airflow's default
        pidfile = Path(service.setting(env, "PIDFILE") or state / f"{service.proc_name}.pid")
        return cls(
            pidfile=pidfile,
            logfile=Path(service.setting(env, "LOGFILE") or pidfile.with_suffix(".log")),
            bind=service.setting(env, "BIND"),
            python=service.setting(env, "PYTHON") or sys.executable,
            env=env,
            stop_timeout=float(service.setting(env, "STOP_TIMEOUT") or STOP_TIMEOUT_S),
            service=service,
        )

    def describe(self) -> str:
        return (
            f"{self.service.title}: gunicorn on {self.bind} (pidfile {self.pidfile}, "
            f"log {self.logfile})"
        )

    def instance_key(self) -> str | None:
        """The key the running service was started with (None before any start here)."""
        try:
            return self.keyfile.read_text().strip() or None
        except OSError:
            return None

    def running_pid(self) -> int | None:
        """The master's pid if the pidfile names a live gunicorn master of this service."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._is_ours(pid) else None

    def ensure_running(self) -> str:
        """``already-running``, ``started``, or ``restarted`` (a dead master was replaced, or a
        live one that did not answer /health)."""
        with self._exclusive():
            pid = self.running_pid()
            if pid is not None:
                if answering(self.health_url, process_age(pid), self.instance_key()):
                    return ALREADY_RUNNING
                self._terminate(pid)
            stale = pid is not None or self.pidfile.exists()
            self.pidfile.unlink(missing_ok=True)  # else gunicorn refuses a reused pid in it
            self._clear_leftovers()
            if port_taken(self.address):
                raise PortTaken(
                    f"port {self.bind} is held by another program, not the {self.service.title} "
                    "this launcher started: nothing was started there"
                )
            self._start()
            return RESTARTED if stale else STARTED

    def stop(self) -> bool:
        """Stop the service (see :meth:`_terminate`). False if nothing was running."""
        with self._exclusive():
            pid = self.running_pid()
            if pid is None:
                return False
            self._terminate(pid)
            self.pidfile.unlink(missing_ok=True)
            return True

    def _terminate(self, pid: int) -> None:
        """SIGTERM the master (gunicorn stops its workers gracefully); after
        ``stop_timeout`` SIGKILL its process group, workers included, and wait until no
        process of it is left, so its port is free for the next master."""
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while self._is_ours(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Its own process group (group id == pid): workers, even one outliving its master.
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + PIDFILE_TIMEOUT_S
        while group_members(pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _clear_leftovers(self) -> None:
        """The workers of a master that was killed outright notice only a moment later (on a
        loaded machine, seconds later), and hold its socket until then: once that master is
        gone, its process group (the workers left) is killed and waited for. A group id
        stays taken while any member lives, so it names no stranger. (Stopped workers are
        ended by the kernel itself when their group is orphaned.)"""
        try:
            pgid = int(self.startfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if self._is_ours(pgid):
            return  # the master lives: whatever holds the port is not a leftover
        if group_members(pgid):
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + PIDFILE_TIMEOUT_S
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _is_ours(self, pid: int) -> bool:
        """``pid`` is the live master this launcher started last (same pid, same start time),
        still a gunicorn master: not a zombie, not a worker, not a recycled pid."""
        try:
            recorded = self.startfile.read_text().split()
        except OSError:
            return False
        return recorded == [str(pid), str(start_ticks(pid))] and _is_gunicorn_master(
            pid, self.service
        )

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        self.lockfile.parent.mkdir(parents=True, exist_ok=True)
        with self.lockfile.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            yield

    def _start(self) -> None:
        service = self.service
        env = service_env(self.env, service)
        try:
            app_dir = service.app_dir()
        except RuntimeError as exc:
            raise LaunchError(str(exc)) from None
        env[f"{service.env_prefix}_PIDFILE"] = str(self.pidfile)
        env[f"{service.env_prefix}_BIND"] = self.bind
        env[service.instance_key_variable] = self._new_instance_key()
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        conf = str(service.conf_file())
        command = [self.python, "-m", "gunicorn", "-c", conf, service.app_spec]
        with self.logfile.open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=app_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: it outlives the task that launched it, and its
                # workers go with it. The session stays the launcher's, so whoever owns that
                # session (the embedded stack) still finds it, even before it wrote a pidfile.
                process_group=0,
            )
        self.startfile.write_text(f"{process.pid} {start_ticks(process.pid)}\n")
        self._wait_for_pidfile(process)

    def _new_instance_key(self) -> str:
        """A fresh key, kept where only this user reads it."""
        key = secrets.token_hex(32)
        self.keyfile.unlink(missing_ok=True)
        fd = os.open(self.keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key)
        return key

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


def port_taken(address: tuple[str, int]) -> bool:
    """Does another socket listen on ``address``? Bound as gunicorn binds (SO_REUSEADDR), so
    a connection of a stopped service that lingers in TIME_WAIT does not count."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def service_env(env: Mapping[str, str], service: Service = FLASK_MONITOR) -> dict[str, str]:
    """The part of ``env`` the service needs; never Airflow's keys and passwords."""
    prefixes = (*service.passed_prefixes, *PASSED_PREFIXES)
    return {
        key: value for key, value in env.items() if key in PASSED_NAMES or key.startswith(prefixes)
    }


def _is_gunicorn_master(pid: int, service: Service) -> bool:
    """Alive (not a zombie), gunicorn, serving this app, and not one of its workers."""
    fields = proc_stat(pid)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if not fields or fields[0] in ("Z", "X"):
        return False
    if b"gunicorn" not in cmdline or b"gunicorn: worker" in cmdline:
        return False
    return service.proc_name.encode() in cmdline or service.app_spec.encode() in cmdline


def proc_stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [state, ppid, pgrp, session, ...]; [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return []


def start_ticks(pid: int) -> int:
    """When ``pid`` started, in clock ticks since boot (0 if it is gone): with the pid, an
    identity no other process will have."""
    fields = proc_stat(pid)
    return int(fields[19]) if fields else 0


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    members = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            fields = proc_stat(int(proc.name))
            if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(proc.name))
    return members


def process_age(pid: int) -> float:
    """Seconds since process ``pid`` started."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return max(0.0, uptime - start_ticks(pid) / os.sysconf("SC_CLK_TCK"))
