"""The monitor as it is deployed: gunicorn (gevent) started by the process launcher, read over
real HTTP while the embedded Airflow serves it."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from testkit.flask_service import served_monitor
from testkit.runs import TRAINING, finished_run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture
def served(embedded_stack, tmp_path: Path) -> Iterator[str]:
    """One gunicorn worker (so one cache to count) with a long TTL, reading the stack."""
    settings = {"MONITOR_CACHE_TTL": "300", "FLASK_MONITOR_WORKERS": "1"}
    with served_monitor(embedded_stack, tmp_path, **settings) as url:
        yield url


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
