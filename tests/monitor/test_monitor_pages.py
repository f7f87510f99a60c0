"""The monitor's routes against the real embedded Airflow: succeeded, failed, queued, running
and no runs at all, and everything Airflow sends shown escaped."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
from flask import template_rendered

from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR
from testkit.runs import (
    RUN_TIMEOUT_S,
    TRAINING,
    broken_csv_run,
    delete_all_runs,
    failing_conf,
    finished_run,
    queued_run,
)
from testkit.tasks import SKIPPED_WITHOUT_APPROVAL
from testkit.waiting import wait_until

pytestmark = pytest.mark.integration

SCRIPT = "<script>alert('x')</script>"


def run_link(stack, run: dict) -> str:
    return f"{stack.api_url}/dags/{TRAINING}/runs/{quote(run['dag_run_id'], safe='')}"


def test_succeeded_run(embedded_stack, client) -> None:
    run = finished_run(embedded_stack)
    assert run["state"] == "success", run

    response = client.get("/api")
    assert response.status_code == 302 and response.headers["Location"] == "/success"

    status = client.get("/api/status").get_json()
    assert status["run_id"] == run["dag_run_id"] and status["state"] == "success"
    assert status["dag_id"] == TRAINING and status["duration"] == run["duration"]
    assert status["run_after"] == run["run_after"] and status["end_date"] == run["end_date"]
    tasks = {t["task_id"]: t["state"] for t in status["tasks"]}
    assert tasks["load_model"] == "success"
    assert {k: v for k, v in tasks.items() if v != "success"} == SKIPPED_WITHOUT_APPROVAL
    assert status["metrics"]["accuracy"] >= 0.9 and status["model"]["promoted"] is True
    assert status["airflow_url"] == run_link(embedded_stack, run)

    page = client.get("/success")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>Latest run succeeded</h1>" in html
    assert run["dag_run_id"] in html and f"{status['metrics']['accuracy']:.4f}" in html
    assert f'href="{run_link(embedded_stack, run)}"' in html
    assert "Open this run in Airflow" in html and "load_model" in html


def test_failed_run(embedded_stack, client) -> None:
    run = finished_run(embedded_stack, failing_conf())
    assert run["state"] == "failed", run

    response = client.get("/api")
    assert response.status_code == 302 and response.headers["Location"] == "/failure"

    status = client.get("/api/status").get_json()
    assert status["state"] == "failed" and status["run_id"] == run["dag_run_id"]
    assert status["metrics"] is None and status["model"] is None
    assert {t["task_id"]: t["state"] for t in status["tasks"]}["load_data"] == "failed"

    html = client.get("/failure").get_data(as_text=True)
    assert "<h1>Latest run failed</h1>" in html and run["dag_run_id"] in html
    assert "No model metrics for this run" in html


def test_success_page_tells_the_truth_about_a_failed_run(embedded_stack, client) -> None:
    run = finished_run(embedded_stack, failing_conf())

    response = client.get("/success")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>Latest run failed</h1>" in html and "succeeded" not in html
    assert "This is the success page, but the latest run" in html and run["dag_run_id"] in html


def test_failure_page_tells_the_truth_about_a_succeeded_run(embedded_stack, client) -> None:
    finished_run(embedded_stack)

    html = client.get("/failure").get_data(as_text=True)

    assert "<h1>Latest run succeeded</h1>" in html
    assert "This is the failure page, but the latest run" in html


def test_queued_run_is_shown_as_queued_never_as_failure(embedded_stack, client) -> None:
    with queued_run(embedded_stack) as run:
        response = client.get("/api")
        status = client.get("/api/status").get_json()
        failure_page = client.get("/failure").get_data(as_text=True)

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h1>Latest run is queued</h1>" in html and "this is not a failure" in html
    assert status["state"] == "queued" and status["run_id"] == run["dag_run_id"]
    assert "<h1>Latest run is queued</h1>" in failure_page


def test_running_run_is_shown_as_running(embedded_stack, client) -> None:
    admin = embedded_stack.client()
    admin.set_paused(TRAINING, False)
    run = admin.trigger(TRAINING, {})
    seen: list[int] = []

    def shown_running():
        response = client.get("/api")
        seen.append(response.status_code)
        if "<h1>Latest run is running</h1>" in response.get_data(as_text=True):
            return response
        if response.status_code == 302:
            pytest.fail(f"run finished before it was seen running: {seen}")
        return None

    response = wait_until(shown_running, RUN_TIMEOUT_S, "the run shown as running", poll=0.2)

    assert response.status_code == 200
    assert client.get("/api/status").get_json()["state"] == "running"
    admin.wait_for_run(TRAINING, run["dag_run_id"], timeout=RUN_TIMEOUT_S)


def test_airflow_data_is_escaped(embedded_stack, client) -> None:
    run = finished_run(embedded_stack, {"data_path": f"{SCRIPT}.csv"})
    embedded_stack.client().request(
        "PATCH",
        f"/api/v2/dags/{TRAINING}/dagRuns/{quote(run['dag_run_id'], safe='')}",
        json={"note": SCRIPT},
    )

    for path in ("/failure", "/success"):
        html = client.get(path).get_data(as_text=True)
        assert "<script" not in html
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html  # the note
        assert "\\u003cscript\\u003ealert(\\u0027x\\u0027)" in html  # the conf, as JSON
    assert client.get("/api/status").get_json()["note"] == SCRIPT  # JSON keeps the data


def test_no_runs_yet(embedded_stack, make_app) -> None:
    # The monitor DAG's history is expendable: every monitor test triggers its own runs.
    delete_all_runs(embedded_stack.client(), MONITOR)
    client = make_app(TRAINING_DAG_ID=MONITOR).test_client()

    status = client.get("/api/status")
    page = client.get("/api")

    assert status.status_code == 200
    body = status.get_json()
    assert body["state"] is None and body["message"] == "no runs yet"
    assert body["dag_id"] == MONITOR and body["run_id"] is None and body["tasks"] == []
    assert page.status_code == 200 and "<h1>No runs yet</h1>" in page.get_data(as_text=True)
    assert "<h1>No runs yet</h1>" in client.get("/success").get_data(as_text=True)


def test_unknown_dag_is_named(make_app) -> None:
    client = make_app(TRAINING_DAG_ID="no_such_dag").test_client()

    response = client.get("/api/status")

    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "dag_not_found" and "no_such_dag" in body["message"]


def test_metrics_report_the_latest_state(embedded_stack, make_app) -> None:
    finished_run(embedded_stack)
    app = make_app()
    client = app.test_client()
    client.get("/api")

    text = client.get("/metrics").get_data(as_text=True)

    assert f'monitor_last_run_state{{dag_id="{TRAINING}",state="success"}} 1.0' in text
    assert f'monitor_last_run_state{{dag_id="{TRAINING}",state="failed"}} 0.0' in text
    assert "monitor_airflow_up 1.0" in text
    assert 'monitor_airflow_calls_total{call="snapshot",outcome="ok"} 1.0' in text


def test_health_with_airflow_up(client) -> None:
    body = client.get("/health").get_json()

    assert body == {
        "status": "ok",
        "airflow": {"reachable": True, "error": None, "scheduler": "healthy"},
    }


def test_failed_run_says_why(embedded_stack, client) -> None:
    run = broken_csv_run(embedded_stack)

    status = client.get("/api/status").get_json()
    html = client.get("/failure").get_data(as_text=True)

    failure = status["failure"]
    assert status["run_id"] == run["dag_run_id"] and failure["task_id"] == "load_data"
    assert failure["error_type"] == "AirflowFailException" and failure["log_problem"] is None
    for words in ("text_in_numeric.csv", "column 'Age'", "line 8", "'forty-two'"):
        assert words in failure["message"]
    assert failure["log_url"] == f"{run_link(embedded_stack, run)}/tasks/load_data?try_number=1"
    assert '<strong class="failed-task">load_data</strong>' in html
    assert "column &#39;Age&#39;" in html and f'href="{failure["log_url"]}"' in html


def test_history_lists_the_runs_and_each_has_a_page(embedded_stack, client) -> None:
    finished_run(embedded_stack)
    runs = embedded_stack.client().runs(TRAINING, limit=20)

    html = client.get("/history").get_data(as_text=True)

    assert html.count('<tr class="run ') == len(runs)
    for chart in ("gate", "duration"):
        assert f'data-chart="{chart}"' in html
    assert html.count('class="point ') == 2 * len(runs)
    for run in runs[:2]:
        page = client.get(f"/runs/{quote(run['dag_run_id'], safe='')}")
        assert page.status_code == 200 and run["dag_run_id"] in page.get_data(as_text=True)
    missing = client.get("/runs/manual__1999-01-01T00:00:00+00:00")
    assert missing.status_code == 404 and "is not among the last 20 runs" in missing.get_data(
        as_text=True
    )


def test_history_costs_one_round_per_window_whatever_the_traffic(make_app) -> None:
    app = make_app(CACHE_TTL=60.0)
    pages = [app.test_client() for _ in range(8)]
    drawn = []

    def count(sender, template, context, **extra) -> None:
        drawn.append(template.name)

    with template_rendered.connected_to(count, app), ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: pages[i % 8].get("/history"), range(80)))

    assert [a.status_code for a in answers] == [200] * 80
    assert len({a.get_data() for a in answers}) == 1  # one snapshot, one page
    assert drawn == ["history.html"]  # drawn once for the window, charts and all
    text = pages[0].get("/metrics").get_data(as_text=True)
    assert 'monitor_airflow_calls_total{call="history",outcome="ok"} 1.0' in text
