"""Flask monitor: shows the latest run of the training DAG, read through Airflow's REST API."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, render_template, request

from airflow_rest import AirflowClient
from monitor import metrics, views
from monitor.metrics import Metrics
from monitor.status import StatusSource

DEFAULTS = {
    "AIRFLOW_URL": "http://127.0.0.1:8080",
    "AIRFLOW_USERNAME": "monitor",
    "AIRFLOW_PASSWORD": "",
    "AIRFLOW_UI_URL": None,
    "AIRFLOW_TIMEOUT": 3.0,
    "DAG_ID": "ad_click_training",
    "RESULT_TASK_ID": "load_model",
    "CACHE_TTL": 2.0,
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
}


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """App factory; settings come from MONITOR_* environment variables unless tests pass them."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    if test_config is None:
        app.config.from_prefixed_env("MONITOR")
    else:
        app.config.update(test_config)

    app.extensions["monitor_metrics"] = app_metrics = Metrics()
    client = AirflowClient(
        app.config["AIRFLOW_URL"],
        app.config["AIRFLOW_USERNAME"],
        str(app.config["AIRFLOW_PASSWORD"]),
        timeout=float(app.config["AIRFLOW_TIMEOUT"]),
    )
    app.extensions["monitor_status"] = StatusSource(
        client,
        app.config["DAG_ID"],
        ttl=float(app.config["CACHE_TTL"]),
        ui_url=app.config["AIRFLOW_UI_URL"] or app.config["AIRFLOW_URL"],
        result_task_id=app.config["RESULT_TASK_ID"],
        on_upstream_call=lambda outcome: app_metrics.upstream_calls.labels(outcome).inc(),
    )
    app.register_blueprint(views.bp)
    app.register_blueprint(metrics.bp)

    @app.after_request
    def finish(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        app_metrics.requests.labels(endpoint, str(response.status_code)).inc()
        return response

    @app.errorhandler(404)
    @app.errorhandler(405)
    def http_error(error):
        return render_template("error.html", error=error), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        app.logger.exception("unhandled error")
        return render_template("error.html", error=None), 500

    app.jinja_env.filters["when"] = format_when
    app.jinja_env.globals["started_at"] = time.time()
    return app


def format_when(value: str | None) -> str:
    """ISO timestamps from Airflow, shortened for people: 2026-11-24 08:30:01 UTC."""
    if not value:
        return "-"
    return value.replace("T", " ")[:19] + " UTC"
