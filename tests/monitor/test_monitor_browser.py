"""Every page of the monitor in a real browser (Debian's chromium-headless-shell), served by
gunicorn as deployed, against the real embedded Airflow: succeeded, failed, running, no runs,
Airflow down. Checks the DOM as rendered and what the console reports; saves a screenshot of
each page state, light and dark, under test-artifacts/screenshots/ (git-ignored)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR
from embedded.stack import REPO_ROOT
from monitor.config import DEFAULTS
from testkit.browser import Browser
from testkit.flask_service import served_monitor
from testkit.runs import (
    RUN_TIMEOUT_S,
    TRAINING,
    broken_csv_run,
    delete_all_runs,
    finished_run,
    patiently,
    started_run,
)
from testkit.waiting import wait_until

pytestmark = pytest.mark.integration

SHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
# Every page load sees Airflow as it is now; a busy machine can keep the api-server from
# answering within the shipped 3 s, and these tests are about pages, not timeouts.
FRESH = {"MONITOR_CACHE_TTL": "0", "MONITOR_AIRFLOW_TIMEOUT": "30"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    opened = Browser()
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def monitor_url(embedded_stack, tmp_path_factory) -> Iterator[str]:
    with served_monitor(embedded_stack, tmp_path_factory.mktemp("browser"), **FRESH) as url:
        yield url


def show(browser: Browser, url: str, shot: str, dark_too: bool = False) -> None:
    """Load the page; no console errors; screenshots (also in dark mode when asked)."""
    for dark in (False, True) if dark_too else (False,):
        assert browser.open(url, dark=dark) == [], url
        browser.screenshot(SHOTS / f"{shot}{'-dark' if dark else ''}.png")


def text(browser: Browser, selector: str) -> str | None:
    return browser.evaluate(
        f"(e => e && e.textContent.trim())(document.querySelector({selector!r}))"
    )


def test_succeeded_run(embedded_stack, monitor_url, browser) -> None:
    run = finished_run(embedded_stack)
    assert run["state"] == "success", run

    show(browser, f"{monitor_url}/api", "succeeded", dark_too=True)

    assert browser.evaluate("location.pathname") == "/success"
    assert text(browser, "h1") == "Latest run succeeded"
    cells = browser.evaluate(
        "[...document.querySelectorAll('table.confusion td.cell')].map(c => +c.dataset.count)"
    )
    rows = browser.evaluate(
        "[...document.querySelectorAll('table.details th')].find(t => t.textContent == "
        "'Hold-out rows').nextElementSibling.textContent"
    )
    assert len(cells) == 4 and sum(cells) == int(rows)
    assert browser.evaluate("document.querySelectorAll('table.confusion .rate').length") == 4

    show(browser, f"{monitor_url}/runs/{quote(run['dag_run_id'], safe='')}", "run-permalink")
    assert text(browser, "h1") == "Run succeeded"


def test_failed_run_names_the_task_and_the_reason(embedded_stack, monitor_url, browser) -> None:
    run = broken_csv_run(embedded_stack)
    assert run["state"] == "failed", run

    show(browser, f"{monitor_url}/api", "failed", dark_too=True)

    assert browser.evaluate("location.pathname") == "/failure"
    assert text(browser, "h1") == "Latest run failed"
    assert text(browser, ".reason .failed-task") == "load_data"
    reason = text(browser, ".reason .error-message")
    for words in ("text_in_numeric.csv", "column 'Age'", "line 8", "'forty-two'"):
        assert words in reason
    log_link = browser.evaluate("document.querySelector('.reason a').href")
    assert log_link.startswith(f"{embedded_stack.api_url}/dags/{TRAINING}/runs/")
    assert log_link.endswith("/tasks/load_data?try_number=1")


def test_history_has_one_point_per_run(embedded_stack, monitor_url, browser) -> None:
    finished_run(embedded_stack)  # at least one success and (earlier) one failure to show

    show(browser, f"{monitor_url}/history", "history", dark_too=True)

    runs = embedded_stack.client().runs(TRAINING, limit=DEFAULTS["HISTORY_RUNS"])
    oldest_first = [r["dag_run_id"] for r in reversed(runs)]
    for chart in ("gate", "duration"):
        points = browser.evaluate(
            f"[...document.querySelectorAll('svg.chart[data-chart={chart}] .point')]"
            ".map(p => [p.dataset.runId, p.dataset.state])"
        )
        assert [run_id for run_id, _ in points] == oldest_first, chart
        states = {r["dag_run_id"]: r["state"] for r in runs}
        assert all(state == states[run_id] for run_id, state in points), chart
    failed = browser.evaluate(
        "[...document.querySelectorAll('svg.chart[data-chart=gate] .point.failed')].length"
    )
    assert failed == sum(r["state"] == "failed" for r in runs) >= 1
    rows = browser.evaluate(
        "[...document.querySelectorAll('table.history tr.run')].map(r => r.dataset.runId)"
    )
    assert rows == [r["dag_run_id"] for r in runs]
    assert "at load_data" in text(browser, "table.history tr.run.failed .why")

    browser.open(f"{monitor_url}/history")
    first_failed = browser.evaluate("document.querySelector('tr.run.failed a').href")
    show(browser, first_failed, "failed-permalink")
    assert text(browser, "h1") == "Run failed" and text(browser, ".failed-task") == "load_data"


def test_running_run(embedded_stack, monitor_url, browser) -> None:
    admin, run_id, deadline = started_run(embedded_stack)

    def shown_running() -> bool:
        assert browser.open(f"{monitor_url}/api") == []
        if browser.evaluate("location.pathname") != "/api":
            pytest.fail("the run finished before it was seen running")
        return text(browser, "h1") == "Latest run is running"

    wait_until(shown_running, deadline - time.monotonic(), "the run shown running", poll=0)
    browser.screenshot(SHOTS / "running.png")
    show(browser, f"{monitor_url}/history", "history-running")
    states = browser.evaluate(
        "[...document.querySelectorAll('svg.chart[data-chart=duration] .point')]"
        ".map(p => p.dataset.state)"
    )
    assert states[-1] in ("queued", "running")
    patiently(lambda: admin.wait_for_run(TRAINING, run_id, RUN_TIMEOUT_S), deadline)


def test_no_runs_yet(embedded_stack, browser, tmp_path) -> None:
    delete_all_runs(embedded_stack.client(), MONITOR)  # expendable: see test_monitor_pages
    with served_monitor(embedded_stack, tmp_path, MONITOR_TRAINING_DAG_ID=MONITOR, **FRESH) as url:
        show(browser, f"{url}/api", "no-runs")
        assert text(browser, "h1") == "No runs yet"
        show(browser, f"{url}/history", "history-no-runs")
        assert browser.evaluate("document.querySelectorAll('svg.chart .point').length") == 0
        assert "has not run yet" in text(browser, "main")


def test_airflow_down(embedded_stack, browser, tmp_path, closed_port_url) -> None:
    with served_monitor(embedded_stack, tmp_path, MONITOR_AIRFLOW_URL=closed_port_url) as url:
        for page in ("api", "history"):
            show(browser, f"{url}/{page}", f"airflow-down-{page}", dark_too=page == "api")
            assert text(browser, "h1") == "Airflow unreachable"
            assert closed_port_url in text(browser, "main")
