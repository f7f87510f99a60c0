"""Prometheus metrics in a registry of the app's own (so tests can build many apps).

With several gunicorn workers each keeps its own counters; a scrape sees one worker.
"""

from __future__ import annotations

import threading

from flask import Blueprint, Response, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from airflow_rest import Lookup
from monitor.charts import is_number

RUN_STATES = ("none", "queued", "running", "success", "failed", "other")

bp = Blueprint("metrics", __name__)


class Metrics:
    """Request, upstream-call and cache counters, and what the latest run looked like."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "monitor_http_requests",
            "HTTP requests served, by route and status code",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.upstream_calls = Counter(
            "monitor_airflow_calls",
            "Rounds of calls to Airflow (snapshot, history or health probe), by outcome",
            ["call", "outcome"],
            registry=self.registry,
        )
        self.cache = Counter(
            "monitor_status_cache",
            "Status lookups answered from the shared cache (hit), with the previous answer "
            "while the refresh is in flight (stale), or by asking Airflow (miss)",
            ["result"],
            registry=self.registry,
        )
        self.last_run_state = Gauge(
            "monitor_last_run_state",
            "1 for the state of the latest run seen, 0 for the others",
            ["dag_id", "state"],
            registry=self.registry,
        )
        self.airflow_up = Gauge(
            "monitor_airflow_up",
            "1 if the last status lookup got an answer from Airflow, else 0",
            registry=self.registry,
        )
        self.model_metric = Gauge(
            "monitor_model_metric",
            "Hold-out metrics of the model registered by each training DAG's latest run "
            "(absent until one was)",
            ["model", "dag_id", "metric"],
            registry=self.registry,
        )
        self.drift_share = Gauge(
            "monitor_drift_share",
            "Share of drifted columns in each model's latest scoring batch with a drift report "
            "(absent until the monitor read one)",
            ["model"],
            registry=self.registry,
        )
        self._state_lock = threading.Lock()

    def observe(self, dag_id: str, lookup: Lookup) -> None:
        """Count one status lookup and remember what it saw (an answer given stale, while its
        refresh was in flight, is older than what the gauges already show: only counted)."""
        result = "stale" if lookup.stale else "hit" if lookup.from_cache else "miss"
        self.cache.labels(result).inc()
        if lookup.stale:
            return
        self.airflow_up.set(0 if lookup.error is not None else 1)
        if lookup.error is None:
            self.record_state(dag_id, lookup.value.get("state"))
            self.record_metrics(dag_id, lookup.value)

    def observe_scoring(self, model: str, lookup: Lookup) -> None:
        """The drift share of ``model``'s latest batch that has one, from a scoring lookup
        (a stale one is older than what the gauge shows: left out)."""
        if lookup.stale or lookup.error is not None:
            return
        share = latest_drift_share(lookup.value["batches"])
        if share is not None:
            self.drift_share.labels(model).set(share)

    def record_metrics(self, dag_id: str, run: dict) -> None:
        """The run's numeric hold-out metrics, by the model's name (its DAG's when the result
        names none); a run without a result leaves the last model's figures in place."""
        metrics = run.get("metrics")
        if not isinstance(metrics, dict):
            return
        model = (run.get("model") or {}).get("name") or dag_id
        for name, value in metrics.items():
            if is_number(value):
                self.model_metric.labels(model, dag_id, name).set(value)

    def record_state(self, dag_id: str, state: str | None) -> None:
        seen = "none" if state is None else state if state in RUN_STATES else "other"
        with self._state_lock:  # never two states at 1, however threads interleave
            for candidate in RUN_STATES:
                self.last_run_state.labels(dag_id, candidate).set(1 if candidate == seen else 0)


def latest_drift_share(batches: list[dict]) -> float | None:
    """The share of drifted columns of the newest batch (``batches`` newest first) that has a
    drift report; None when none has."""
    for batch in batches:
        share = batch.get("drift_share")
        if is_number(share):
            return float(share)
    return None


@bp.get("/metrics")
def metrics() -> Response:
    registry = current_app.extensions["monitor"].metrics.registry
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
