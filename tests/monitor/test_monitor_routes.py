"""Routes against the real Airflow: a succeeded, a failed and a queued run, Airflow down."""

from __future__ import annotations

import time

import pytest

from airflow_rest import AirflowClient
from embedded.stack import EmbeddedStack

pytestmark = pytest.mark.integration

TRAINING = "ad_click_training"


def finished_run(stack: EmbeddedStack, conf: dict | None = None) -> dict:
    client = stack.client()
    run = client.trigger(TRAINING, conf or {})
    return client.wait_for_run(TRAINING, run["dag_run_id"], timeout=300)


def test_succeeded_run_redirects_to_success(embedded_stack, client) -> None:
    run = finished_run(embedded_stack)
    assert run["state"] == "success"

    response = client.get("/api")
    assert response.status_code == 302 and response.headers["Location"] == "/success"

    status = client.get("/api/status").get_json()
    assert status["run_id"] == run["dag_run_id"] and status["state"] == "success"
    assert status["metrics"]["accuracy"] >= 0.9 and status["model"]["promoted"] is True
    assert {t["task_id"]: t["state"] for t in status["tasks"]}["load_model"] == "success"

    page = client.get("/success").get_data(as_text=True)
    assert run["dag_run_id"] in page and "Latest run succeeded" in page
    assert f"{status['metrics']['accuracy']:.4f}" in page
    assert f"/dags/{TRAINING}/runs/" in page


def test_failed_run_redirects_to_failure(embedded_stack, client) -> None:
    run = finished_run(embedded_stack, {"data_path": "does-not-exist.csv"})
    assert run["state"] == "failed"

    response = client.get("/api")
    assert response.status_code == 302 and response.headers["Location"] == "/failure"
    page = client.get("/failure").get_data(as_text=True)
    assert "Latest run failed" in page and run["dag_run_id"] in page
    assert client.get("/api/status").get_json()["metrics"] is None


def test_queued_run_is_shown_as_queued_never_as_failure(embedded_stack, client) -> None:
    admin = embedded_stack.client()
    admin.set_paused(TRAINING, True)  # a run of a paused DAG stays queued
    try:
        run = admin.trigger(TRAINING, {})
        response = client.get("/api")
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert "Latest run is queued" in page and "not a failure" in page
        assert client.get("/api/status").get_json()["state"] == "queued"
    finally:
        admin.request(
            "PATCH",
            f"/api/v2/dags/{TRAINING}/dagRuns/{run['dag_run_id']}",
            json={"state": "failed"},
        )
        admin.set_paused(TRAINING, False)


def test_run_note_is_escaped(embedded_stack, client) -> None:
    run = finished_run(embedded_stack)
    embedded_stack.client().request(
        "PATCH",
        f"/api/v2/dags/{TRAINING}/dagRuns/{run['dag_run_id']}",
        json={"note": "<script>alert('x')</script>"},
    )
    page = client.get("/success").get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page


def test_airflow_down_answers_503_quickly_and_health_stays_200(make_app, closed_port_url) -> None:
    client = make_app(AIRFLOW_URL=closed_port_url).test_client()
    started = time.monotonic()
    response = client.get("/api/status")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.get_json()["error"] == "airflow_unreachable"
    assert "connection refused" in response.get_json()["detail"]
    assert elapsed < 5, "must not hang on a dead Airflow"

    page = client.get("/api")
    assert page.status_code == 503 and "Airflow unreachable" in page.get_data(as_text=True)
    health = client.get("/health")
    assert health.status_code == 200
    assert health.get_json()["airflow"]["reachable"] is False


def test_wrong_password_names_the_cause(make_app) -> None:
    client = make_app(AIRFLOW_PASSWORD="not-the-password").test_client()
    response = client.get("/api/status")
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "airflow_auth_failed" and "monitor" in body["detail"]
    assert "Traceback" not in client.get("/api").get_data(as_text=True)


def test_concurrent_requests_share_one_upstream_call(make_app) -> None:
    from concurrent.futures import ThreadPoolExecutor

    app = make_app(CACHE_TTL=30.0)
    with ThreadPoolExecutor(16) as pool:
        codes = list(
            pool.map(lambda _: app.test_client().get("/api/status").status_code, range(64))
        )
    assert set(codes) == {200}
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'monitor_airflow_calls_total{outcome="ok"} 1.0' in metrics
    assert 'monitor_status_cache_total{result="hit"} 63.0' in metrics
    assert "monitor_last_run_state{state=" in metrics


def test_viewer_account_is_read_only(embedded_stack) -> None:
    from airflow_rest import AirflowAuthError

    viewer = embedded_stack.client("viewer")
    assert isinstance(viewer.runs(TRAINING), list)  # reading is allowed
    with pytest.raises(AirflowAuthError, match="403"):
        viewer.trigger(TRAINING, {})
    with pytest.raises(AirflowAuthError, match="403"):
        viewer.set_paused(TRAINING, True)


def test_client_reuses_its_token_and_logs_in_again_after_expiry(embedded_stack) -> None:
    from tests.conftest import JWT_LIFETIME_S

    client = AirflowClient(
        embedded_stack.api_url, embedded_stack.viewer.username, embedded_stack.viewer.password
    )
    for _ in range(5):
        client.runs(TRAINING)
    assert client.logins == 1

    client._renew_at = None  # forget when it expires: the server's 401 must trigger re-login
    time.sleep(JWT_LIFETIME_S + 1)
    assert isinstance(client.runs(TRAINING), list)
    assert client.logins == 2
