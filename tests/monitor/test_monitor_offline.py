"""The monitor when Airflow is down or not Airflow at all, and what every response carries.

No embedded stack needed: a closed port is a down Airflow, for real.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from monitor import create_app

PAGES = ("/api", "/success", "/failure")
EVERY_KIND_OF_RESPONSE = (
    ("GET", "/api/status"),
    ("GET", "/api"),
    ("GET", "/success"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/static/style.css"),
    ("GET", "/no-such-page"),
    ("POST", "/api/status"),
)


def metric(app, line_start: str) -> float:
    """The value of the one sample of /metrics starting with ``line_start``."""
    text = app.test_client().get("/metrics").get_data(as_text=True)
    values = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(line_start)]
    assert len(values) == 1, f"{line_start!r} in:\n{text}"
    return float(values[0])


def test_status_names_the_unreachable_airflow(down_client, closed_port_url) -> None:
    response = down_client.get("/api/status")

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.get_json() == {
        "error": "airflow_unreachable",
        "message": f"airflow unreachable at {closed_port_url}: connection refused",
        "dag_id": "ad_click_training",
    }


@pytest.mark.parametrize("path", PAGES)
def test_pages_show_airflow_unreachable(down_client, closed_port_url, path: str) -> None:
    response = down_client.get(path)

    page = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "<h1>Airflow unreachable</h1>" in page
    assert f"airflow unreachable at {closed_port_url}: connection refused" in page
    assert "Traceback" not in page


def test_health_stays_200_and_says_airflow_is_unreachable(down_client, closed_port_url) -> None:
    response = down_client.get("/health")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["airflow"]["reachable"] is False
    assert closed_port_url in body["airflow"]["error"]


def test_a_hung_airflow_gives_503_after_the_timeout(make_down_app, fault_server) -> None:
    silent = fault_server("silent")
    client = make_down_app(AIRFLOW_URL=silent.url, AIRFLOW_TIMEOUT=0.3).test_client()

    response = client.get("/api/status")

    assert response.status_code == 503
    assert response.get_json()["error"] == "airflow_unreachable"
    assert response.get_json()["message"] == (
        f"airflow unreachable at {silent.url}: no answer within 0.3 s"
    )
    health = client.get("/health").get_json()
    assert health["status"] == "ok" and health["airflow"]["reachable"] is False


def test_a_url_that_is_not_airflow_is_named(make_down_app, fault_server) -> None:
    html = fault_server("html")
    client = make_down_app(AIRFLOW_URL=html.url).test_client()

    response = client.get("/api/status")

    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "airflow_error"
    assert f"is {html.url} an Airflow api-server?" in body["message"]
    assert "Welcome" not in client.get("/api").get_data(as_text=True)


def test_concurrent_requests_to_a_hung_airflow_make_one_upstream_call(
    make_down_app, fault_server
) -> None:
    silent = fault_server("silent")
    app = make_down_app(AIRFLOW_URL=silent.url, AIRFLOW_TIMEOUT=0.5, CACHE_TTL=60.0)

    with ThreadPoolExecutor(16) as pool:
        codes = list(
            pool.map(lambda _: app.test_client().get("/api/status").status_code, range(48))
        )

    assert codes == [503] * 48
    assert silent.connections == 1  # the one login attempt; everybody else shared its failure
    outcome = 'monitor_airflow_calls_total{call="snapshot",outcome="airflow_unreachable"}'
    assert metric(app, outcome) == 1
    assert metric(app, 'monitor_status_cache_total{result="miss"}') == 1
    assert metric(app, 'monitor_status_cache_total{result="hit"}') == 47
    assert metric(app, "monitor_airflow_up ") == 0


def test_errors_are_cached_for_the_ttl(make_down_app) -> None:
    app = make_down_app(CACHE_TTL=60.0)
    client = app.test_client()

    for path in ("/api/status", "/api", "/success", "/failure", "/api/status"):
        assert client.get(path).status_code == 503

    outcome = 'monitor_airflow_calls_total{call="snapshot",outcome="airflow_unreachable"}'
    assert metric(app, outcome) == 1


def test_without_cache_every_request_asks_airflow(make_down_app) -> None:
    app = make_down_app(CACHE_TTL=0.0)
    client = app.test_client()

    for _ in range(3):
        assert client.get("/api/status").status_code == 503

    outcome = 'monitor_airflow_calls_total{call="snapshot",outcome="airflow_unreachable"}'
    assert metric(app, outcome) == 3


@pytest.mark.parametrize(("method", "path"), EVERY_KIND_OF_RESPONSE)
def test_security_headers_on_every_response(down_client, method: str, path: str) -> None:
    response = down_client.open(path, method=method)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "script-src" not in csp


@pytest.mark.parametrize("path", [*PAGES, "/no-such-page"])
def test_pages_need_no_inline_script_or_style(down_client, path: str) -> None:
    page = down_client.get(path).get_data(as_text=True)

    assert "<script" not in page and "<style" not in page and " style=" not in page
    assert '<link rel="stylesheet" href="/static/style.css">' in page
    assert down_client.get("/static/style.css").status_code == 200


def test_unknown_route_is_a_plain_404(down_client) -> None:
    response = down_client.get("/admin/../../etc/passwd")

    assert response.status_code == 404
    assert response.content_type == "text/html; charset=utf-8"
    page = response.get_data(as_text=True)
    assert "<h1>404 Not Found</h1>" in page and "Traceback" not in page


@pytest.mark.parametrize("path", ["/api", "/api/status", "/success", "/health", "/metrics"])
def test_wrong_method_is_a_plain_405(down_client, path: str) -> None:
    response = down_client.post(path)

    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert "<h1>405 Method Not Allowed</h1>" in response.get_data(as_text=True)


def test_an_internal_error_shows_no_details(down_app) -> None:
    @down_app.get("/boom")
    def boom():
        raise RuntimeError("secret internals: password=hunter2")

    response = down_app.test_client().get("/boom")

    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "<h1>500 Internal Server Error</h1>" in page
    assert "hunter2" not in page and "Traceback" not in page and "RuntimeError" not in page
    assert response.headers["X-Frame-Options"] == "DENY"


def test_metrics_are_prometheus_text_counting_requests(down_app) -> None:
    client = down_app.test_client()
    client.get("/api/status")
    client.get("/nope")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    assert metric(down_app, 'monitor_http_requests_total{endpoint="/api/status",status="503"}') == 1
    assert metric(down_app, 'monitor_http_requests_total{endpoint="unmatched",status="404"}') == 1


def test_each_app_has_its_own_metrics(make_down_app) -> None:
    first, second = make_down_app(), make_down_app()
    first.test_client().get("/api/status")

    assert metric(first, 'monitor_status_cache_total{result="miss"}') == 1
    text = second.test_client().get("/metrics").get_data(as_text=True)
    assert not re.search(r"^monitor_status_cache_total", text, re.MULTILINE)


def test_settings_come_from_monitor_environment_variables(monkeypatch, closed_port_url) -> None:
    monkeypatch.setenv("MONITOR_AIRFLOW_URL", closed_port_url + "/")
    monkeypatch.setenv("MONITOR_AIRFLOW_USERNAME", "reader")
    monkeypatch.setenv("MONITOR_AIRFLOW_PASSWORD", "1e5")  # valid JSON: must stay text
    monkeypatch.setenv("MONITOR_TRAINING_DAG_ID", "other_dag")
    monkeypatch.setenv("MONITOR_CACHE_TTL", "7.5")
    monkeypatch.setenv("MONITOR_AIRFLOW_TIMEOUT", "4")

    app = create_app()

    assert app.config["AIRFLOW_URL"] == closed_port_url
    assert app.config["AIRFLOW_UI_URL"] == closed_port_url
    assert app.config["AIRFLOW_PASSWORD"] == "1e5"
    assert app.config["CACHE_TTL"] == 7.5 and app.config["AIRFLOW_TIMEOUT"] == 4.0
    status = app.test_client().get("/api/status").get_json()
    assert status["dag_id"] == "other_dag" and status["error"] == "airflow_unreachable"


def test_defaults_match_the_design(monkeypatch) -> None:
    for name in ("URL", "USERNAME", "PASSWORD", "UI_URL", "TIMEOUT"):
        monkeypatch.delenv(f"MONITOR_AIRFLOW_{name}", raising=False)
    for name in ("TRAINING_DAG_ID", "CACHE_TTL"):
        monkeypatch.delenv(f"MONITOR_{name}", raising=False)

    config = create_app().config

    assert config["AIRFLOW_URL"] == config["AIRFLOW_UI_URL"] == "http://127.0.0.1:8080"
    assert config["TRAINING_DAG_ID"] == "ad_click_training"
    assert config["CACHE_TTL"] == 2.0 and config["AIRFLOW_TIMEOUT"] == 3.0


@pytest.mark.parametrize(("name", "value"), [("CACHE_TTL", "soon"), ("AIRFLOW_TIMEOUT", "0")])
def test_a_bad_number_names_the_variable(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"MONITOR_{name}", value)

    with pytest.raises(ValueError, match=f"MONITOR_{name} must be a number of seconds"):
        create_app()
