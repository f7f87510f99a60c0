"""The docker launcher and the socket proxy, against the real engine through the real proxy.

The proxy runs with the stack's own policy (docker/socket-proxy/haproxy.cfg.template) and is
published on 127.0.0.1 for the tests only (tests/e2e/compose.e2e.yaml). Scratch containers
are created on the host engine, since the proxy rightly refuses to create anything.
"""

from __future__ import annotations

import http.client
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import requests

from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR
from flask_launcher.docker import DockerLauncher, DockerLauncherError
from testkit.compose import ComposeStack, docker, pause
from testkit.mailbox import Mailbox
from testkit.tasks import task_states
from testkit.waiting import wait_until
from testkit.watchdog import WATCHDOG, running_runs, switch_off_watchdog, watchdog_waiting

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
        # A name the proxy lets through (the monitor's pattern) that no container has.
        launcher(stack, f"{stack.project}-flask-monitor-999").ensure_running()


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


@pytest.mark.parametrize(
    "path",
    [
        "/containers/{name}/start%0a",
        "/containers/{name}%0a/start",
        "/containers/{name}/start%00",
        "/v./containers/{name}/start",
        "/v.1.23/containers/{name}/start",
        "/v1.240/containers/{name}/start",
    ],
)
def test_socket_proxy_refuses_control_characters_and_odd_versions(
    stack: ComposeStack, path: str
) -> None:
    """The monitor's own start, spelt so that a regular expression's "$" or a loose version
    pattern would let it through."""
    name = docker("inspect", "--format", "{{.Name}}", stack.container_id("flask-monitor"))
    status = raw_status(stack, "POST", path.format(name=name.lstrip("/")))
    assert status in (400, 403), f"POST {path}: {status}"


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


# -- a hung Flask monitor: alive, not answering ------------------------------------------------
WEDGE_GUNICORN = (
    "import os, signal\n"
    "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
    "    if int(pid) != os.getpid() and b'gunicorn' in open(f'/proc/{pid}/cmdline', 'rb').read():\n"
    "        os.kill(int(pid), signal.SIGSTOP)\n"
)


def flask_health(stack: ComposeStack) -> int | None:
    try:
        return requests.get(f"{stack.flask_url}/health", timeout=2).status_code
    except requests.RequestException:
        return None


def wedge(stack: ComposeStack, container: str) -> None:
    """Freeze gunicorn's master and worker inside the container (as a deadlock would): the
    container runs and Docker still calls it healthy, but nothing answers."""
    docker("exec", container, "python", "-c", WEDGE_GUNICORN)
    wait_until(lambda: flask_health(stack) is None, 10, "gunicorn to stop answering")


def monitor_launcher(stack: ComposeStack) -> DockerLauncher:
    """What the workers run, but reaching the service through its published port."""
    return DockerLauncher.from_env(
        {
            "DOCKER_HOST": stack.proxy_url,
            "FLASK_MONITOR_CONTAINER": f"com.docker.compose.project={stack.project},"
            "com.docker.compose.service=flask-monitor",
            "FLASK_MONITOR_HEALTH_URL": f"{stack.flask_url}/health",
        }
    )


@pytest.fixture
def flask_monitor(stack: ComposeStack) -> Iterator[str]:
    """The stack's own flask-monitor container, answering, with the watchdog switched off so
    that only the test acts on it; answering again afterwards, whatever the test did."""
    switch_off_watchdog(stack.api())
    container = stack.container_id("flask-monitor")
    wait_until(lambda: flask_health(stack) == 200, 90, "the Flask monitor to answer")
    yield container
    if state(container) == "paused":
        docker("unpause", container)
    if flask_health(stack) != 200:
        docker("restart", "-t", "1", container)
    wait_until(lambda: flask_health(stack) == 200, 90, "the Flask monitor to answer again")


def test_unpauses_a_paused_flask_monitor(stack: ComposeStack, flask_monitor: str) -> None:
    pause(flask_monitor)
    assert flask_health(stack) is None
    before = started_at(flask_monitor)

    assert monitor_launcher(stack).ensure_running() == "unpaused"

    wait_until(lambda: flask_health(stack) == 200, 30, "the unpaused monitor to answer")
    assert started_at(flask_monitor) == before  # the same process, resumed
    assert monitor_launcher(stack).ensure_running() == "already-running"
    # Docker's own verdict catches up at its next check; the next test starts from a clean one.
    wait_until(lambda: health(flask_monitor) == "healthy", 60, "Docker to call it healthy again")


def test_restarts_a_flask_monitor_whose_gunicorn_is_wedged(
    stack: ComposeStack, flask_monitor: str
) -> None:
    wedge(stack, flask_monitor)
    assert state(flask_monitor) == "running" and health(flask_monitor) != "unhealthy"
    before = started_at(flask_monitor)

    assert monitor_launcher(stack).ensure_running() == "restarted"

    assert started_at(flask_monitor) != before
    wait_until(lambda: flask_health(stack) == 200, 60, "the restarted monitor to answer")
    assert stack.container_id("flask-monitor") == flask_monitor  # restarted, never a second


def test_the_watchdog_replaces_a_wedged_flask_monitor(
    stack: ComposeStack, flask_monitor: str
) -> None:
    admin = stack.api()
    admin.set_paused(WATCHDOG, False)
    try:
        wait_until(lambda: watchdog_waiting(admin), 120, "the watchdog to wait in the triggerer")
        [waiting] = running_runs(admin)
        wedge(stack, flask_monitor)
        wedged = time.monotonic()

        wait_until(lambda: flask_health(stack) == 200, 90, "the watchdog to replace Flask")
        print(f"wedged Flask monitor answering again after {time.monotonic() - wedged:.1f} s")
        run = admin.wait_for_run(WATCHDOG, waiting["dag_run_id"], timeout=120)
        assert run["state"] == "success", task_states(admin, WATCHDOG, run["dag_run_id"])
        assert admin.xcom(WATCHDOG, run["dag_run_id"], "relaunch_flask") == "restarted"
    finally:
        switch_off_watchdog(admin)


FORGET_RELAUNCHES = (
    "from adclick_airflow import settings; settings.flask_relaunch_file().unlink(missing_ok=True)"
)


@pytest.mark.timeout(600)
def test_a_flapping_flask_monitor_mails_once(
    stack: ComposeStack, flask_monitor: str, mail: Mailbox
) -> None:
    """Five stops in a row, each brought back by the monitor DAG through the proxy: later each
    time, and one "flapping" mail for the burst (more than 3 relaunches in 10 minutes)."""
    admin = stack.api(timeout=60)
    docker("exec", stack.container_id("airflow-worker"), "python", "-c", FORGET_RELAUNCHES)
    mail.clear()
    for stop in range(5):
        docker("stop", "-t", "1", flask_monitor)  # unless-stopped: it stays down
        run = admin.trigger(MONITOR, {})
        run = admin.wait_for_run(MONITOR, run["dag_run_id"], timeout=240)
        tasks = task_states(admin, MONITOR, run["dag_run_id"])
        assert run["state"] == "success" and tasks["relaunch_flask"] == "success", (stop, tasks)
    flapping = mail.wait_for(lambda m: "Flask monitor flapping" in m["Subject"])
    subjects = [m["Subject"] for m in mail.messages()]
    assert subjects.count(flapping["Subject"]) == 1, subjects
