"""Prometheus metrics in a registry of the app's own (so tests can build many apps).

With several gunicorn workers each keeps its own; a scrape sees one worker.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

bp = Blueprint("metrics", __name__)
NO_MODEL = "-"  # the model label of routes that serve none, and of names no model has
# Seconds: a one-row prediction takes a few milliseconds, a 10 MB batch seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """Requests by model, route and status; their latency; what each model serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "model_server_http_requests",
            "HTTP requests served, by model, route and status code",
            ["model", "endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "model_server_request_seconds",
            "Time to answer a request, by model and route",
            ["model", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "model_server_predicted_rows",
            "Rows scored, by model",
            ["model"],
            registry=self.registry,
        )
        self.version = Gauge(
            "model_server_model_version_info",
            "1 for the version each model serves (absent before its first champion)",
            ["model", "version"],
            registry=self.registry,
        )
        self.loads = Counter(
            "model_server_champion_loads",
            "Champions loaded after a promotion (loaded) or refused (rejected: the old one "
            "kept serving), by model",
            ["model", "outcome"],
            registry=self.registry,
        )

    def serving(self, model: str, version: str, old: str | None) -> None:
        if old is not None and old != version:
            self.version.remove(model, old)
        self.version.labels(model, version).set(1)


@bp.get("/metrics")
def metrics() -> Response:
    registry = current_app.extensions["model_server"].metrics.registry
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
