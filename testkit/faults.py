"""Fault injection: real TCP servers that misbehave the ways an Airflow URL can, and
crashing or stopping one component of an embedded stack.

``silent`` accepts connections and never answers (a hung api-server, a firewall that
swallows packets after the handshake); ``html`` answers every request with a 200 HTML page
(the URL points at some other web server). Both count the connections they accepted, which
is how tests see how often the code under test really went upstream.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
from urllib.parse import unquote

from embedded.stack import EmbeddedStack
from testkit.local_http import JSONHandler, LocalHTTPServer

_PAGE = b"<html><p>Welcome!</p></html>"
HTML_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_PAGE), _PAGE)
)


class FaultServer:
    def __init__(self, kind: str) -> None:
        if kind not in ("silent", "html"):
            raise ValueError(f"unknown fault server kind {kind!r}")
        self.kind = kind
        self.connections = 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # stopped
            with self._lock:
                self.connections += 1
                self._open.append(conn)
            if self.kind == "html":
                conn.recv(65536)
                conn.sendall(HTML_ANSWER)

    def stop(self) -> None:
        self._listener.close()
        with self._lock:
            for conn in self._open:
                conn.close()


class FlakyAirflow:
    """An api-server stand-in whose first answer to each REST call is a 500 "Database error",
    the answer a real SQLite-backed api-server gives when a write times out on the lock.

    It also records a triggered run before failing, like a commit that succeeded just before
    the connection broke, so a retried trigger meets its own run (409).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.runs: dict[str, dict] = {}
        failed: set[tuple[str, str]] = set()
        owner = self

        class Handler(JSONHandler):
            def _route(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                path = self.path.split("?")[0]
                owner.calls.append((method, path))
                if path == "/auth/token":
                    return self.answer(201, {"access_token": "header.e30.signature"})
                if method == "POST" and path.endswith("/dagRuns"):
                    run_id = body["dag_run_id"]
                    if run_id in owner.runs:
                        return self.answer(409, {"detail": "run exists"})
                    owner.runs[run_id] = {"dag_run_id": run_id, "conf": body["conf"]}
                if (method, path) not in failed:
                    failed.add((method, path))
                    return self.answer(500, {"detail": {"reason": "Database error"}})
                if method == "GET" and "/dagRuns/" in path:
                    return self.answer(200, owner.runs[unquote(path.rsplit("/", 1)[1])])
                if method == "GET" and path.endswith("/dagRuns"):
                    return self.answer(200, {"dag_runs": list(owner.runs.values())})
                return self.answer(200, {"is_paused": body.get("is_paused")})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PATCH(self) -> None:
                self._route("PATCH")

        self._server = LocalHTTPServer(Handler)
        self.url = self._server.url

    def stop(self) -> None:
        self._server.stop()


def kill_component(
    stack: EmbeddedStack, name: str, signum: int = signal.SIGKILL, whole_group: bool = True
) -> None:
    """Signal one component (``scheduler``, ``api-server``, ``mailcatcher``, ...) and wait
    for it to exit. ``whole_group=False`` hits its main process only, the way a crash does:
    children it forked (LocalExecutor workers, running tasks) live on."""
    proc = stack._procs[name]
    with contextlib.suppress(ProcessLookupError):
        if whole_group:
            os.killpg(proc.pid, signum)  # its own session: group id == pid
        else:
            os.kill(proc.pid, signum)
    proc.wait(timeout=60)


def restart_component(stack: EmbeddedStack, name: str) -> None:
    """Start a component killed by ``kill_component`` again, as the stack first started it."""
    proc = stack._procs[name]
    if proc.poll() is None:
        raise RuntimeError(f"{name} is still running (pid {proc.pid})")
    stack.spawn(name)
