"""Prometheus metrics, in a registry of the app's own (so tests can build many apps)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

RUN_STATES = ("queued", "running", "success", "failed", "none", "unknown")

bp = Blueprint("metrics", __name__)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "monitor_http_requests",
            "HTTP requests served",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.upstream_calls = Counter(
            "monitor_airflow_calls",
            "Snapshots fetched from Airflow, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.cache = Counter(
            "monitor_status_cache",
            "Status lookups, served from cache or not",
            ["result"],
            registry=self.registry,
        )
        self.last_run_state = Gauge(
            "monitor_last_run_state",
            "1 for the state of the latest run seen",
            ["state"],
            registry=self.registry,
        )

    def record_state(self, state: str | None) -> None:
        seen = state if state in RUN_STATES else ("none" if state is None else "unknown")
        for candidate in RUN_STATES:
            self.last_run_state.labels(candidate).set(1 if candidate == seen else 0)


@bp.get("/metrics")
def metrics() -> Response:
    return Response(
        generate_latest(current_app.extensions["monitor_metrics"].registry),
        mimetype=CONTENT_TYPE_LATEST,
    )
