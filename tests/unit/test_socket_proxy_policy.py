"""The socket proxy's policy, run for real: Debian's HAProxy with the stack's template,
rendered as the image renders it, in front of a fake engine on a Unix socket that records
every request reaching it. The engine's answers are canned (no engine is needed); what is
under test is which requests HAProxy lets reach it at all."""

from __future__ import annotations

import json
import os
import shutil
import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest
import yaml

from embedded.stack import REPO_ROOT
from flask_launcher.docker import DockerLauncher
from testkit.waiting import wait_until

TEMPLATE = REPO_ROOT / "docker" / "socket-proxy" / "haproxy.cfg.template"
PROJECT = "adclick-policy"
FLASK = f"{PROJECT}-flask-monitor-1"
FLASK_ID = "f1a5c0" + "0" * 58
OTHER = f"{PROJECT}-postgres-1"
SELECTOR = f"com.docker.compose.project={PROJECT},com.docker.compose.service=flask-monitor"


@dataclass
class FakeEngine:
    """What reached the engine, and the state its canned answers report for the monitor."""

    requests: list[tuple[str, str, bytes]] = field(default_factory=list)
    status: str = "running"
    health: str = "healthy"

    def answer(self, method: str, path: str) -> tuple[int, object]:
        path = path.split("?", 1)[0]
        if path.endswith("/_ping"):
            return 200, "OK"
        if path.endswith("/containers/json"):
            return 200, [{"Id": FLASK_ID, "Names": [f"/{FLASK}"], "State": self.status}]
        if path.endswith(f"/containers/{FLASK}/json"):
            state = {"Status": self.status, "Health": {"Status": self.health}}
            return 200, {"Id": FLASK_ID, "Name": f"/{FLASK}", "State": state}
        if method == "POST":
            self.status, self.health = "running", "healthy"
            return 204, None
        return 404, {"message": "no such thing"}


def engine_handler(engine: FakeEngine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def address_string(self) -> str:
            return "engine-socket"

        def log_message(self, *args: object) -> None:
            pass

        def handle_one(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            engine.requests.append((self.command, self.path, body))
            status, payload = engine.answer(self.command, self.path)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = handle_one

    return Handler


class UnixEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def haproxy_binary() -> str:
    """Debian's haproxy, installed on first use where this runs as root (a fresh CI machine)."""
    found = shutil.which("haproxy")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "haproxy"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True, check=True)
        found = shutil.which("haproxy")
    if not found:
        message = "haproxy is not installed (apt-get install haproxy) and this is not root"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def compose_allowed_containers() -> str:
    """The proxy's ALLOWED_CONTAINERS as docker-compose.yaml sets it, for project PROJECT."""
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())
    value = compose["services"]["docker-socket-proxy"]["environment"]["ALLOWED_CONTAINERS"]
    return value.replace("${COMPOSE_PROJECT_NAME}", PROJECT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Proxy:
    port: int
    engine: FakeEngine

    @property
    def docker_host(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def send(self, raw: bytes) -> int:
        """Send one request exactly as written; the status HAProxy or the engine answered."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(raw)
            reply = b""
            while b"\r\n" not in reply:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return int(reply.split(b" ", 2)[1])

    def request(self, method: str, path: str, headers: str = "", body: bytes = b"") -> int:
        head = f"{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n{headers}"
        if body and "Transfer-Encoding" not in headers:
            head += f"Content-Length: {len(body)}\r\n"
        return self.send(head.encode() + b"\r\n" + body)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    haproxy = haproxy_binary()
    work = tmp_path_factory.mktemp("proxy")
    engine = FakeEngine()
    server = UnixEngine(str(work / "engine.sock"), engine_handler(engine))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    # As the image's entrypoint does: only ${BIND_CONFIG} is substituted in the file.
    config = work / "haproxy.cfg"
    config.write_text(TEMPLATE.read_text().replace("${BIND_CONFIG}", f"127.0.0.1:{port}"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SOCKET_PATH": str(work / "engine.sock"),
        "ALLOWED_CONTAINERS": compose_allowed_containers(),
        "LOG_LEVEL": "info",
    }
    process = subprocess.Popen(
        [haproxy, "-W", "-db", "-f", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: port_open(port) or process.poll() is not None, 20, "haproxy")
        assert process.poll() is None, process.stderr.read().decode()
        yield Proxy(port, engine)
    finally:
        process.terminate()
        process.wait(10)
        server.shutdown()
        server.server_close()


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture
def engine(proxy: Proxy) -> FakeEngine:
    proxy.engine.requests.clear()
    proxy.engine.status, proxy.engine.health = "running", "healthy"
    return proxy.engine


def test_the_launcher_starts_and_restarts_the_monitor_through_the_proxy(
    proxy: Proxy, engine: FakeEngine
) -> None:
    launcher = DockerLauncher(docker_host=proxy.docker_host, container=SELECTOR)
    engine.status = "exited"
    assert launcher.ensure_running() == "started"
    engine.status, engine.health = "running", "unhealthy"
    assert launcher.ensure_running() == "restarted"
    assert launcher.ensure_running() == "already-running"
    # By name, the other way FLASK_MONITOR_CONTAINER can point at it.
    engine.status = "exited"
    assert DockerLauncher(docker_host=proxy.docker_host, container=FLASK).ensure_running() == (
        "started"
    )
    calls = [(method, path.split("?", 1)[0]) for method, path, _ in engine.requests]
    assert ("POST", f"/containers/{FLASK}/start") in calls
    assert ("POST", f"/containers/{FLASK}/restart") in calls
    assert ("GET", f"/containers/{FLASK}/json") in calls
    assert all(body == b"" for _, _, body in engine.requests)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_ping"),
        ("HEAD", "/_ping"),
        ("GET", "/containers/json?all=1"),
        ("GET", f"/v1.24/containers/{FLASK}/json"),
        ("GET", f"/v1.41/containers/{FLASK}/json"),
        ("POST", f"/containers/{FLASK}/start"),
        ("POST", f"/v1.41/containers/{FLASK}/restart?t=10"),
        ("POST", f"/containers/{FLASK}/unpause"),
    ],
)
def test_what_the_launcher_may_do_reaches_the_engine(
    proxy: Proxy, engine: FakeEngine, method: str, path: str
) -> None:
    headers = "Content-Length: 0\r\n" if method == "POST" else ""
    assert proxy.request(method, path, headers) < 400
    assert [(m, p) for m, p, _ in engine.requests] == [(method, path)]


START_BODY = json.dumps({"Privileged": True, "Binds": ["/:/host"]}).encode()


CHUNKED = "Transfer-Encoding: chunked\r\n"


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        # A HostConfig in the body of start: applied by engines before API 1.24.
        ("POST", f"/containers/{FLASK}/start", "", START_BODY),
        ("POST", f"/v1.23/containers/{FLASK}/start", "", START_BODY),
        ("POST", f"/containers/{FLASK}/restart", "", START_BODY),
        ("POST", f"/containers/{FLASK}/unpause", "", START_BODY),
        ("POST", f"/containers/{FLASK}/start", CHUNKED, chunked(START_BODY)),
        ("POST", f"/containers/{FLASK}/restart", CHUNKED, chunked(b"{}")),
        ("POST", f"/containers/{FLASK}/start", CHUNKED, b"0\r\n\r\n"),
        ("GET", "/containers/json", "", b"{}"),
        # Old API versions, however spelled.
        ("POST", f"/v1.23/containers/{FLASK}/start", "", b""),
        ("POST", f"/v1.12/containers/{FLASK}/start", "", b""),
        ("POST", f"/v1%2e23/containers/{FLASK}/start", "", b""),
        ("POST", f"/v1.023/containers/{FLASK}/start", "", b""),
        ("GET", "/v1.23/containers/json", "", b""),
        ("GET", "/v1.23/_ping", "", b""),
        # Version prefixes that are not /v1.24 to /v1.99.
        ("GET", "/v./_ping", "", b""),
        ("GET", "/v/_ping", "", b""),
        ("POST", f"/v./containers/{FLASK}/start", "", b""),
        ("POST", f"/v.1.23/containers/{FLASK}/start", "", b""),
        ("POST", f"/v1.240/containers/{FLASK}/start", "", b""),
        ("POST", f"/v1.100/containers/{FLASK}/start", "", b""),
        ("POST", f"/v2.0/containers/{FLASK}/start", "", b""),
        ("POST", f"/v1.24./containers/{FLASK}/start", "", b""),
        ("GET", "/v1.41.0/containers/json", "", b""),
        # Control characters anywhere in the path: a regular expression's "$" matches before a
        # final newline.
        ("POST", f"/containers/{FLASK}/start%0a", "", b""),
        ("POST", f"/containers/{FLASK}/start%0A", "", b""),
        ("POST", f"/containers/{FLASK}/start%0d%0a", "", b""),
        ("POST", f"/containers/{FLASK}%0a/start", "", b""),
        ("GET", f"/containers/{FLASK}/json%0a", "", b""),
        ("GET", "/_ping%0a", "", b""),
        ("GET", "/_ping%00", "", b""),
        ("GET", "/_ping%09", "", b""),
        ("GET", "/_ping%7f", "", b""),
        ("GET", "/containers/json%1b", "", b""),
        ("POST", f"/v1.41%0a/containers/{FLASK}/start", "", b""),
        # Everything else the engine offers.
        ("POST", f"/containers/{FLASK}/stop", "", b""),
        ("POST", f"/containers/{FLASK}/kill", "", b""),
        ("POST", f"/containers/{FLASK}/pause", "", b""),
        ("POST", "/containers/create", "", b""),
        ("POST", f"/containers/create?name={FLASK}", "", b""),
        ("POST", f"/containers/{FLASK}/exec", "", b""),
        ("POST", f"/containers/{FLASK}/update", "", b""),
        ("DELETE", f"/containers/{FLASK}", "", b""),
        ("DELETE", f"/containers/{FLASK}?force=1", "", b""),
        ("POST", "/build", "", b""),
        ("POST", "/images/create?fromImage=busybox", "", b""),
        ("GET", "/images/json", "", b""),
        ("GET", "/events", "", b""),
        ("GET", "/version", "", b""),
        ("GET", "/info", "", b""),
        ("GET", f"/containers/{OTHER}/json", "", b""),
        ("GET", f"/containers/{FLASK_ID}/json", "", b""),
        ("GET", f"/containers/{FLASK_ID[:12]}/json", "", b""),
        ("POST", f"/containers/{OTHER}/start", "", b""),
        ("POST", f"/containers/{FLASK_ID}/start", "", b""),
        ("GET", f"/containers/{FLASK}/top", "", b""),
        ("GET", f"/containers/{FLASK}/changes", "", b""),
        ("GET", f"/containers/{FLASK}/stats", "", b""),
        ("GET", f"/containers/{FLASK}/logs?stdout=1", "", b""),
        ("GET", f"/containers/{FLASK}/archive?path=/", "", b""),
        ("POST", f"/containers/{FLASK}/attach", "", b""),
        ("GET", f"/containers/{FLASK}/json/../../{OTHER}/json", "", b""),
        ("GET", f"/containers/{FLASK}%2f..%2f{OTHER}/json", "", b""),
        ("POST", f"/containers/{FLASK}/start", "Upgrade: tcp\r\nConnection: Upgrade\r\n", b""),
        ("GET", f"/containers/{FLASK}/json", "Upgrade: h2c\r\n", b""),
    ],
)
def test_nothing_else_reaches_the_engine(
    proxy: Proxy, engine: FakeEngine, method: str, path: str, headers: str, body: bytes
) -> None:
    status = proxy.request(method, path, headers, body)
    assert status in (400, 403), f"{method} {path}: {status}"
    assert engine.requests == []


def test_http2_is_refused(proxy: Proxy, engine: FakeEngine) -> None:
    """An HTTP/2 request can carry a body with neither Content-Length nor Transfer-Encoding."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(preface + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        reply = sock.recv(4096)
    assert not reply.startswith(b"\x00\x00"), "HAProxy answered with HTTP/2 frames"
    assert engine.requests == []
