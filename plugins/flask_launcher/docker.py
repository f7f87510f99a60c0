"""Keep a service's container running (the Flask monitor's by default; see
:mod:`flask_launcher.services`), through the Docker Engine API.

Used by the monitor DAG in the Compose stack (``FLASK_LAUNCHER=docker``). The workers reach the
engine only through the socket proxy (``DOCKER_HOST=tcp://docker-socket-proxy:2375``), which
lets through the container list, inspect, and start, restart and unpause of the monitor's
container by name (no request body), and nothing else. These are the only calls made:

    GET  /containers/json?all=1&filters={"label": [...]}   (label selector only)
    GET  /containers/{name}/json
    POST /containers/{name}/start | /restart?t=N | /unpause

It finds the monitor's container, starts it when it is stopped, unpauses it when it is
paused, restarts it when it runs but does not answer (Docker says unhealthy, or its /health
gives no answer: a wedged process is replaced long before Docker's health check gives up on
it), and leaves every other container alone.

Plain ``http.client`` over TCP or a Unix socket: no Docker SDK in the Airflow image.

Environment:
    DOCKER_HOST                 tcp://host:port or unix:///path
                                (default unix:///var/run/docker.sock)
    FLASK_MONITOR_CONTAINER     a container name or id, or comma-separated label filters
                                (``key=value,...``);
                                default com.docker.compose.service=flask-monitor
    FLASK_MONITOR_HEALTH_URL    the service's /health as this process reaches it (unset: only
                                Docker's own health status counts)
    FLASK_MONITOR_STOP_TIMEOUT  seconds the engine gives gunicorn to stop on restart (default 2)
    (another service: its own prefix, e.g. MODEL_SERVER_CONTAINER)
    DOCKER_API_TIMEOUT          seconds per Engine API call (default 30)
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from adclick_contract import FLASK_MONITOR_SERVICE
from flask_launcher import ALREADY_RUNNING
from flask_launcher.health import STOP_TIMEOUT_S, answering
from flask_launcher.services import FLASK_MONITOR, Service

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_API_TIMEOUT_S = 30  # seconds per Engine API call
DEFAULT_SELECTOR = f"com.docker.compose.service={FLASK_MONITOR_SERVICE}"

STARTED = "started"
UNPAUSED = "unpaused"
RESTARTED = "restarted"
# When several containers match, the report names the strongest action taken.
_OUTCOME_RANK = {ALREADY_RUNNING: 0, UNPAUSED: 1, STARTED: 2, RESTARTED: 3}


class DockerLauncherError(RuntimeError):
    """The container could not be found or (re)started; the message says why and where."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the engine's Unix socket (local use without the proxy)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def _container_name(summary: dict[str, Any]) -> str:
    """A listed container's own name ("/name"; names with more slashes are link aliases)."""
    for name in summary.get("Names") or ():
        if name.count("/") == 1:
            return name.lstrip("/")
    return summary["Id"]


class DockerLauncher:
    """Start or restart one service's container; idempotent, touches no other container."""

    def __init__(
        self,
        docker_host: str = DEFAULT_DOCKER_HOST,
        container: str = DEFAULT_SELECTOR,
        stop_timeout: int = STOP_TIMEOUT_S,
        timeout: float = 30.0,
        health_url: str | None = None,
    ) -> None:
        self.docker_host = docker_host
        self.container = container.strip()
        self.stop_timeout = stop_timeout
        self.timeout = timeout
        self.health_url = health_url
        url = urlsplit(docker_host)
        if url.scheme in ("tcp", "http"):
            if not url.hostname:
                raise DockerLauncherError(f"DOCKER_HOST {docker_host!r} names no host")
            self._tcp: tuple[str, int] | None = (url.hostname, url.port or 2375)
            self._unix_path = None
        elif url.scheme == "unix":
            self._tcp = None
            self._unix_path = url.path
        else:
            raise DockerLauncherError(
                f"DOCKER_HOST {docker_host!r}: only tcp:// (the socket proxy) and unix:// are "
                "supported"
            )
        if not self.container:
            raise DockerLauncherError("FLASK_MONITOR_CONTAINER is empty")

    @classmethod
    def from_env(cls, env: Mapping[str, str], service: Service = FLASK_MONITOR) -> DockerLauncher:
        """Build from environment variables (see the module docstring)."""
        if env.get("DOCKER_TLS_VERIFY"):
            raise DockerLauncherError(
                "DOCKER_TLS_VERIFY is set but TLS to the engine is not supported: "
                "point DOCKER_HOST at the socket proxy instead"
            )
        try:
            stop_timeout = int(service.setting(env, "STOP_TIMEOUT") or STOP_TIMEOUT_S)
            timeout = float(env.get("DOCKER_API_TIMEOUT") or DEFAULT_API_TIMEOUT_S)
        except ValueError as exc:
            raise DockerLauncherError(f"bad launcher timeout setting: {exc}") from exc
        return cls(
            docker_host=env.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST,
            container=service.setting(env, "CONTAINER")
            or f"com.docker.compose.service={service.compose_service}",
            stop_timeout=stop_timeout,
            timeout=timeout,
            health_url=service.setting(env, "HEALTH_URL"),
        )

    def describe(self) -> str:
        what = "containers labelled" if self._is_selector else "container"
        return f"docker launcher: {what} {self.container} via {self.docker_host}"

    def instance_key(self) -> None:
        """None: the container's port lives in its own network namespace, where no other
        program can take it while the service is down."""
        return None

    def ensure_running(self) -> str:
        """Make the monitor's container run and answer:
        "already-running" | "unpaused" | "started" | "restarted"."""
        outcomes = [self._ensure_one(info) for info in self._find()]
        return max(outcomes, key=_OUTCOME_RANK.__getitem__)

    @property
    def _is_selector(self) -> bool:
        # Container names cannot contain "=", label filters always do.
        return "=" in self.container

    def _find(self) -> list[dict[str, Any]]:
        """Inspect data of every container the setting designates (at least one)."""
        if not self._is_selector:
            status, body = self._request("GET", f"/containers/{quote(self.container)}/json")
            if status == 404:
                raise DockerLauncherError(
                    f"no container named {self.container!r} on {self.docker_host}"
                )
            return [self._checked(status, body, "inspect", self.container)]
        labels = [part.strip() for part in self.container.split(",") if part.strip()]
        query = urlencode({"all": "1", "filters": json.dumps({"label": labels})})
        status, body = self._request("GET", f"/containers/json?{query}")
        listed = self._checked(status, body, "list containers", self.container)
        if not listed:
            raise DockerLauncherError(
                f"no container labelled {self.container} on {self.docker_host}: "
                "is the stack up (docker compose up) and FLASK_MONITOR_CONTAINER right?"
            )
        found = []
        for summary in listed:
            # By name: the socket proxy lets inspect through for the monitor's name only.
            name = _container_name(summary)
            status, body = self._request("GET", f"/containers/{quote(name)}/json")
            found.append(self._checked(status, body, "inspect", name))
        return found

    def _ensure_one(self, info: dict[str, Any]) -> str:
        # By name: the socket proxy lets life-cycle calls through for the monitor's name only.
        name = info.get("Name", "").lstrip("/") or info["Id"]
        state = info.get("State") or {}
        status = state.get("Status")
        if status == "running" and not self._answers(state):
            # The engine stops it (SIGTERM, SIGKILL after t seconds) and starts it again.
            self._post(f"/containers/{quote(name)}/restart?t={self.stop_timeout}", "restart", name)
            return RESTARTED
        if status in ("running", "restarting"):
            # "restarting": the engine's restart policy is already bringing it back.
            return ALREADY_RUNNING
        if status == "paused":
            self._post(f"/containers/{quote(name)}/unpause", "unpause", name)
            return UNPAUSED
        if status in ("created", "exited"):
            self._post(f"/containers/{quote(name)}/start", "start", name)
            return STARTED
        raise DockerLauncherError(
            f"container {name} is {status!r}; refusing to act on it (only created, exited, "
            "paused, running or restarting containers are handled)"
        )

    def _answers(self, state: dict[str, Any]) -> bool:
        """A running container serves when its /health answers (a container started moments
        ago is given time to boot). The ping is the judge where there is one: Docker's health
        status lags behind, e.g. it still says unhealthy right after a pause ends."""
        if self.health_url is not None:
            return answering(self.health_url, _seconds_since(state))
        return (state.get("Health") or {}).get("Status") != "unhealthy"

    def _post(self, path: str, action: str, name: str) -> None:
        status, body = self._request("POST", path)
        # 304: already in the wanted state (someone else started it meanwhile).
        if status not in (204, 304):
            self._checked(status, body, action, name)

    def _checked(self, status: int, body: Any, action: str, name: str) -> Any:
        if 200 <= status < 300:
            return body
        if status == 403:
            raise DockerLauncherError(
                f"{action} {name}: refused by {self.docker_host} (403); the socket proxy's "
                "ALLOWED_CONTAINERS must match this container's name"
            )
        message = body.get("message") if isinstance(body, dict) else body
        raise DockerLauncherError(f"{action} {name}: Docker API answered {status}: {message}")

    def _request(self, method: str, path: str) -> tuple[int, Any]:
        if self._tcp is not None:
            conn: http.client.HTTPConnection = http.client.HTTPConnection(
                *self._tcp, timeout=self.timeout
            )
        else:
            conn = _UnixHTTPConnection(self._unix_path or "", self.timeout)
        try:
            conn.request(method, path, headers={"Host": "docker", "Content-Length": "0"})
            response = conn.getresponse()
            raw = response.read()
        except OSError as exc:
            raise DockerLauncherError(
                f"cannot reach the Docker API at {self.docker_host}: {exc}"
            ) from exc
        finally:
            conn.close()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace").strip()
        return response.status, body


def _seconds_since(state: dict[str, Any]) -> float:
    """Seconds since the container started (its ``StartedAt``, nanoseconds and all)."""
    started = str(state.get("StartedAt") or "")
    try:
        # "2026-12-01T11:12:01.123456789Z": Python reads at most microseconds.
        head, _, fraction = started.rstrip("Z").partition(".")
        when = datetime.fromisoformat(f"{head}.{(fraction or '0')[:6]}").replace(tzinfo=UTC)
    except ValueError:
        return 0.0
    return max(0.0, (datetime.now(UTC) - when).total_seconds())
