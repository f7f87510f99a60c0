"""The monitor as it is deployed: gunicorn (gthread) started by the process launcher, read over
real HTTP while the embedded Airflow serves it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from embedded.stack import free_port
from flask_launcher import wait_healthy
from flask_launcher.process import ProcessLauncher
from tests.monitor.runs import TRAINING, finished_run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture
def served(embedded_stack, tmp_path: Path) -> Iterator[str]:
    """One gunicorn worker (so one cache to count) with a long TTL, reading the stack."""
    port = free_port()
    env = {
        **os.environ,
        "MONITOR_AIRFLOW_URL": embedded_stack.api_url,
        "MONITOR_AIRFLOW_USERNAME": embedded_stack.viewer.username,
        "MONITOR_AIRFLOW_PASSWORD": embedded_stack.viewer.password,
        "MONITOR_CACHE_TTL": "300",
        "FLASK_MONITOR_WORKERS": "1",
        "FLASK_MONITOR_THREADS": "8",
    }
    launcher = ProcessLauncher(
        tmp_path / "monitor.pid", tmp_path / "monitor.log", bind=f"127.0.0.1:{port}", env=env
    )
    assert launcher.ensure_running() == "started"
    url = f"http://127.0.0.1:{port}"
    assert wait_healthy(f"{url}/health", timeout=60)["healthy"]
    yield url
    launcher.stop()


def test_concurrent_http_requests_make_one_upstream_call(embedded_stack, served: str) -> None:
    run = finished_run(embedded_stack)

    def status(_: int) -> tuple[int, str]:
        response = requests.get(f"{served}/api/status", timeout=30)
        return response.status_code, response.json()["run_id"]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(status, range(64)))

    assert set(answers) == {(200, run["dag_run_id"])}
    metrics = requests.get(f"{served}/metrics", timeout=10).text
    assert 'monitor_airflow_calls_total{call="snapshot",outcome="ok"} 1.0' in metrics
    assert 'monitor_status_cache_total{result="hit"} 63.0' in metrics
    page = requests.get(f"{served}/api", timeout=10, allow_redirects=True)
    assert page.status_code == 200 and page.url == f"{served}/success"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert f"{TRAINING}" in page.text
