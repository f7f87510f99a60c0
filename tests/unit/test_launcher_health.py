"""The health ping the monitor DAGs use: healthy only for the monitor's own 200 answer.

The blocking ping (tasks) and the async one (the watchdog's trigger) must judge alike.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest
from werkzeug.serving import make_server

from flask_launcher import check_health, check_health_async, wait_healthy
from monitor import create_app
from testkit.faults import FaultServer
from testkit.ports import free_port


@pytest.fixture
def monitor_url() -> Iterator[str]:
    """The real monitor app served by Werkzeug's threaded server on a free port."""
    app = create_app({"AIRFLOW_URL": f"http://127.0.0.1:{free_port()}", "AIRFLOW_PASSWORD": "x"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(params=["blocking", "async"])
def check(request: pytest.FixtureRequest) -> Callable[..., dict]:
    if request.param == "blocking":
        return check_health
    return lambda url, timeout=2.0: asyncio.run(check_health_async(url, timeout=timeout))


def test_monitor_with_airflow_down_is_healthy(monitor_url: str, check) -> None:
    result = check(f"{monitor_url}/health")

    assert result["healthy"] is True and result["status"] == 200 and result["error"] is None
    assert result["body"]["airflow"]["reachable"] is False


def test_another_page_of_the_monitor_is_not_health(monitor_url: str, check) -> None:
    result = check(f"{monitor_url}/api/status")  # 503 JSON: Airflow is down

    assert result["healthy"] is False and result["status"] == 503
    assert result["error"] == "HTTP 503"


def test_nothing_listening_is_unhealthy_not_an_exception(check) -> None:
    result = check(f"http://127.0.0.1:{free_port()}/health")

    assert result == {
        "healthy": False,
        "status": None,
        "error": "connection refused",
        "body": None,
    }


def test_a_200_from_something_else_is_not_healthy(check) -> None:
    html = FaultServer("html")
    try:
        result = check(f"{html.url}/health")
    finally:
        html.stop()

    assert result["healthy"] is False and result["status"] == 200
    assert result["error"] == "HTTP 200 but not the monitor's health answer"


def test_a_hung_service_times_out_as_unhealthy(check) -> None:
    silent = FaultServer("silent")
    try:
        result = check(f"{silent.url}/health", timeout=0.2)
    finally:
        silent.stop()

    assert result["healthy"] is False and result["error"].startswith("timed out")


def test_wait_healthy_returns_the_last_failure_when_it_gives_up() -> None:
    result = wait_healthy(f"http://127.0.0.1:{free_port()}/health", timeout=0.5, interval=0.1)

    assert result["healthy"] is False and result["error"] == "connection refused"


def test_wait_healthy_returns_as_soon_as_healthy(monitor_url: str) -> None:
    result = wait_healthy(f"{monitor_url}/health", timeout=30)

    assert result["healthy"] is True
