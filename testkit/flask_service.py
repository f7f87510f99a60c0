"""The Flask monitor as a process on this machine: who serves its port, is it healthy."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import requests

from embedded.stack import EmbeddedStack
from flask_launcher import wait_healthy
from flask_launcher.process import ProcessLauncher, proc_stat
from testkit.ports import free_port
from testkit.waiting import wait_until


def listening_holders(port: int) -> set[int]:
    """Pids holding a socket that listens on 127.0.0.1:``port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        if state == "0A" and int(local.split(":")[1], 16) == port:  # 0A = LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    holders = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if inodes & {os.readlink(fd) for fd in (proc / "fd").iterdir()}:
                    holders.add(int(proc.name))
            except OSError:
                continue
    return holders


def masters_serving(port: int) -> list[int]:
    """Listening processes whose parent does not listen too: one per gunicorn master."""
    holders = listening_holders(port)
    parents = {pid: int(fields[1]) for pid in holders if (fields := proc_stat(pid))}
    return sorted(pid for pid, parent in parents.items() if parent not in holders)


def health(stack: EmbeddedStack) -> int | None:
    try:
        return requests.get(f"{stack.flask_url}/health", timeout=2).status_code
    except requests.RequestException:
        return None


@contextmanager
def served_monitor(stack: EmbeddedStack, workdir: Path, **settings: str) -> Iterator[str]:
    """Another Flask monitor, deployed as shipped (gunicorn started by the process launcher)
    on a free port, reading ``stack`` with the viewer account; ``settings`` are MONITOR_* /
    FLASK_MONITOR_* variables that differ from the shipped defaults. Yields its URL."""
    account = {
        "MONITOR_AIRFLOW_URL": stack.api_url,
        "MONITOR_AIRFLOW_USERNAME": stack.viewer.username,
        "MONITOR_AIRFLOW_PASSWORD": stack.viewer.password,
    }
    with launched_monitor(workdir, **(account | settings)) as url:  # settings may override
        yield url


@contextmanager
def launched_monitor(workdir: Path, **settings: str) -> Iterator[str]:
    """The Flask monitor as shipped (gunicorn started by the process launcher) on a free port,
    with the MONITOR_* / FLASK_MONITOR_* variables ``settings`` and none of this process's.
    Yields its URL once /health answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "FLASK_MONITOR_"))}
    env.update(settings)
    launcher = ProcessLauncher(
        workdir / "monitor.pid", workdir / "monitor.log", bind=f"127.0.0.1:{port}", env=env
    )
    launcher.ensure_running()
    try:
        url = f"http://127.0.0.1:{port}"
        health = wait_healthy(f"{url}/health", timeout=60)
        if not health["healthy"]:
            raise RuntimeError(f"monitor not healthy: {health}; see {launcher.logfile}")
        yield url
    finally:
        launcher.stop()


def flask_pid(stack: EmbeddedStack) -> int | None:
    """The Flask monitor's gunicorn master, from the pidfile the process launcher keeps."""
    try:
        return int(Path(stack.env["FLASK_MONITOR_PIDFILE"]).read_text().strip())
    except (OSError, ValueError):
        return None


def one_byte_clients(url: str, count: int, stack: ExitStack) -> list[socket.socket]:
    """``count`` connections that each sent the first byte of a request and nothing more."""
    address = urlsplit(url)
    clients = []
    for _ in range(count):
        client = stack.enter_context(
            socket.create_connection((address.hostname, address.port), timeout=30)
        )
        client.sendall(b"G")
        clients.append(client)
    return clients


# Another program on the monitor's port: answers every GET with the JSON it was given.
IMPOSTOR = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

answer = json.dumps(json.loads(sys.argv[2])).encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


@contextmanager
def impostor(port: int, answer: dict) -> Iterator[subprocess.Popen]:
    """A real process of another user (``nobody``, where this runs as root) that binds
    127.0.0.1:``port`` and answers ``answer`` to everything, until the block ends."""
    user = "nobody" if os.geteuid() == 0 else None
    process = subprocess.Popen(
        ["/usr/bin/python3", "-c", IMPOSTOR, str(port), json.dumps(answer)],
        user=user,
        cwd="/",
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(
            lambda: process.pid in listening_holders(port) or process.poll() is not None,
            20,
            f"an impostor listening on {port}",
            poll=0.05,
        )
        if process.poll() is not None:
            raise RuntimeError(f"impostor exited: {process.stderr.read().decode()}")
        yield process
    finally:
        process.kill()
        process.wait(10)
