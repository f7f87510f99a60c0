"""The docker launcher and the socket proxy, against the real engine through the real proxy.

The proxy runs with the stack's own policy (docker/socket-proxy/haproxy.cfg.template) and is
published on 127.0.0.1 for the tests only (tests/e2e/compose.e2e.yaml). Scratch containers
are created on the host engine, since the proxy rightly refuses to create anything.
"""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
import requests

from flask_launcher.docker import DockerLauncher, DockerLauncherError
from testkit.compose import ComposeStack, docker
from testkit.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]


def proxy_http(stack: ComposeStack) -> str:
    return stack.proxy_url.replace("tcp://", "http://", 1)


def raw_status(stack: ComposeStack, method: str, path: str, body: bytes | None = None) -> int:
    """Status of one request sent with the path exactly as written (no dot-segment cleanup)."""
    url = urlsplit(stack.proxy_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        headers = {} if body else {"Content-Length": "0"}
        conn.request(method, path, body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def launcher(stack: ComposeStack, container: str) -> DockerLauncher:
    return DockerLauncher.from_env(
        {"DOCKER_HOST": stack.proxy_url, "FLASK_MONITOR_CONTAINER": container}
    )


def state(container: str) -> str:
    return docker("inspect", "--format", "{{.State.Status}}", container)


def health(container: str) -> str:
    return docker("inspect", "--format", "{{.State.Health.Status}}", container)


def started_at(container: str) -> str:
    return docker("inspect", "--format", "{{.State.StartedAt}}", container)


@pytest.fixture
def label() -> str:
    return f"launcher-{uuid.uuid4().hex[:8]}"


def flask_like_name(stack: ComposeStack) -> str:
    """A name of the form the proxy lets the monitor start or restart (and no other)."""
    return f"{stack.project}-flask-monitor-{uuid.uuid4().int % 10**8 + 100}"


def test_starts_a_stopped_container_and_nothing_else(
    stack: ComposeStack, scratch_containers: Callable[..., str], label: str
) -> None:
    target = scratch_containers(label, name=flask_like_name(stack))
    bystander = scratch_containers(f"{label}-other")
    assert state(target) == "created"

    launch = launcher(stack, f"adclick.e2e.scratch={label}")
    assert launch.ensure_running() == "started"
    assert state(target) == "running"
    assert state(bystander) == "created"
    # Idempotent: a second call finds it running and does nothing.
    first_start = started_at(target)
    assert launch.ensure_running() == "already-running"
    assert started_at(target) == first_start


def test_restarts_a_running_but_unhealthy_container(
    stack: ComposeStack, scratch_containers: Callable[..., str], label: str
) -> None:
    name = flask_like_name(stack)
    target = scratch_containers(label, healthcheck=True, name=name)
    docker("start", target)
    wait_until(lambda: health(target) == "unhealthy", 30, "the scratch container to be unhealthy")
    before = started_at(target)

    # By container name this time, the other way FLASK_MONITOR_CONTAINER can point at it.
    launch = launcher(stack, name)
    assert launch.ensure_running() == "restarted"
    assert state(target) == "running"
    assert started_at(target) != before


def test_names_what_it_cannot_find(stack: ComposeStack, label: str) -> None:
    with pytest.raises(DockerLauncherError, match="no container labelled"):
        launcher(stack, f"adclick.e2e.scratch={label}").ensure_running()
    with pytest.raises(DockerLauncherError, match="no container named"):
        launcher(stack, f"adclick-e2e-missing-{label}").ensure_running()


def test_finds_the_stack_flask_monitor_by_its_compose_labels(stack: ComposeStack) -> None:
    """The selector the compose file gives the workers designates exactly that container."""
    selector = (
        f"com.docker.compose.project={stack.project},com.docker.compose.service=flask-monitor"
    )
    launch = launcher(stack, selector)
    assert "flask-monitor" in launch.describe()
    assert launch.ensure_running() in ("already-running", "started")
    assert state(stack.container_id("flask-monitor")) == "running"
    assert launch.ensure_running() == "already-running"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/containers/create"),
        ("POST", "/containers/{id}/exec"),
        ("DELETE", "/containers/{id}"),
        ("POST", "/containers/{id}/pause"),
        ("POST", "/containers/{id}/update"),
        ("GET", "/containers/{id}/logs?stdout=1"),
        ("GET", "/containers/{id}/archive?path=/etc"),
        ("GET", "/images/json"),
        ("POST", "/images/create?fromImage=busybox"),
        ("POST", "/volumes/create"),
        ("POST", "/containers/{id}/start/../../create"),
        ("GET", "/events"),
        ("GET", "/containers/{id}/top"),
        ("GET", "/containers/{id}/changes"),
        ("GET", "/containers/{id}/stats?stream=0"),
    ],
)
def test_socket_proxy_refuses_everything_but_the_launcher_s_calls(
    stack: ComposeStack, method: str, path: str
) -> None:
    container = stack.container_id("flask-monitor")
    status = raw_status(stack, method, path.format(id=container))
    assert status == 403, f"{method} {path}: {status}"


def test_socket_proxy_allows_what_the_launcher_needs(stack: ComposeStack) -> None:
    container = stack.container_id("flask-monitor")
    name = docker("inspect", "--format", "{{.Name}}", container).lstrip("/")
    base = proxy_http(stack)
    assert requests.get(f"{base}/_ping", timeout=10).status_code == 200
    assert requests.get(f"{base}/containers/json", timeout=10).status_code == 200
    assert requests.get(f"{base}/containers/{name}/json", timeout=10).status_code == 200
    # Starting the running Flask monitor is allowed and a no-op (304).
    assert requests.post(f"{base}/containers/{name}/start", timeout=10).status_code == 304


@pytest.mark.parametrize("service", ["airflow-init", "postgres", "airflow-worker"])
def test_socket_proxy_shows_no_other_container(stack: ComposeStack, service: str) -> None:
    """Inspect hands out a container's environment: the Flask monitor's only, by name only."""
    container = stack.container_id(service)
    name = docker("inspect", "--format", "{{.Name}}", container).lstrip("/")
    for target in (container, name):
        assert raw_status(stack, "GET", f"/containers/{target}/json") == 403
    flask = stack.container_id("flask-monitor")
    assert raw_status(stack, "GET", f"/containers/{flask}/json") == 403


def host_config(container: str) -> str:
    return docker("inspect", "--format", "{{json .HostConfig}}", container)


def test_a_start_with_a_body_changes_nothing(
    stack: ComposeStack, scratch_containers: Callable[..., str], label: str
) -> None:
    """Engines before API 1.24 apply a HostConfig sent with start (host root for whoever can
    start a container): the proxy refuses any body, and any such version, before the engine
    sees it."""
    name = flask_like_name(stack)
    target = scratch_containers(label, name=name)
    before = host_config(target)
    escalation = b'{"Privileged": true, "Binds": ["/:/host"], "CapAdd": ["ALL"]}'
    for version in ("/v1.23", "/v1.41", ""):
        status = raw_status(stack, "POST", f"{version}/containers/{name}/start", escalation)
        assert status == 403, f"{version}/containers/{name}/start with a body: {status}"
    assert raw_status(stack, "POST", f"/v1.23/containers/{name}/start") == 403
    assert state(target) == "created"
    assert host_config(target) == before
    # The same call without a body is the launcher's, and passes.
    assert raw_status(stack, "POST", f"/containers/{name}/start") == 204
    assert state(target) == "running"
    assert host_config(target) == before
    assert docker("inspect", "--format", "{{.HostConfig.Privileged}}", target) == "false"


@pytest.mark.parametrize("action", ["start", "restart", "stop", "kill"])
@pytest.mark.parametrize("service", ["postgres", "airflow-worker", "flask-monitor"])
def test_socket_proxy_lets_no_other_container_be_started_or_restarted(
    stack: ComposeStack, service: str, action: str
) -> None:
    """Life-cycle calls pass for the Flask monitor's name only: not for any other service,
    and not by id (an id could name any container)."""
    container = stack.container_id(service)
    name = docker("inspect", "--format", "{{.Name}}", container).lstrip("/")
    targets = [container] if service == "flask-monitor" else [container, name]
    for target in targets:
        status = raw_status(stack, "POST", f"/containers/{target}/{action}")
        assert status == 403, f"POST /containers/{target}/{action}: {status}"
