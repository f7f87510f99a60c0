"""Slow clients cannot silence the monitor: the gunicorn service as both stacks run it
(flask_monitor/gunicorn.conf.py, started by the process launcher) keeps answering /health and
/api/status while 100 connections each send one byte of a request and then nothing.

The one-second client timeout is the failure criterion: a server whose workers wait on the
slow connections' headers does not answer within it. Airflow is down here (a closed port),
which /api/status reports at once; what is under test happens before any route runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from testkit.flask_service import launched_monitor, one_byte_clients
from testkit.ports import free_port

pytestmark = [pytest.mark.timeout(180)]

SLOW_CLIENTS = 100
ANSWER_WITHIN_S = 1.0


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[str]:
    with launched_monitor(
        tmp_path,
        MONITOR_AIRFLOW_URL=f"http://127.0.0.1:{free_port()}",
        MONITOR_AIRFLOW_PASSWORD="x",
    ) as url:
        yield url


def test_slow_clients_leave_health_and_status_answering(monitor: str) -> None:
    with ExitStack() as stack:
        one_byte_clients(monitor, SLOW_CLIENTS, stack)
        for _ in range(3):
            health = requests.get(f"{monitor}/health", timeout=ANSWER_WITHIN_S)
            assert health.status_code == 200 and health.json()["status"] == "ok"
            status = requests.get(f"{monitor}/api/status", timeout=ANSWER_WITHIN_S)
            assert status.status_code == 503  # Airflow is down, and the monitor says so
            assert "error" in status.json()


def test_a_client_that_never_finishes_its_headers_is_dropped(monitor: str) -> None:
    """The time to read a request's headers is bounded: the connection is closed (whatever
    the server says first), not held for as long as the client likes."""
    with ExitStack() as stack:
        (client,) = one_byte_clients(monitor, 1, stack)
        client.settimeout(60)  # generous: the bound is gunicorn's keepalive, seconds
        received = b""
        while chunk := client.recv(4096):
            received += chunk
        assert not received or received.startswith(b"HTTP/1.1 4")
