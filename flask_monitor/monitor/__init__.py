"""Flask monitor: the latest run of each training DAG and its history, read through Airflow's
REST API (the default DAG's under /api and /history, every model's under /models/<name>)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from airflow_rest import AirflowClient
from monitor import filters, hooks, metrics, models, views
from monitor.config import load_config
from monitor.metrics import Metrics
from monitor.scoring import ScoringBatches
from monitor.status import ModelSources, StatusSource


@dataclass(frozen=True)
class Services:
    """What the routes share: the status source (client + cache) and the metrics."""

    status: StatusSource
    metrics: Metrics
    models: ModelSources
    scoring: ScoringBatches
    # page name -> (the snapshot it shows, its HTML): see views.rendered_once
    pages: dict[str, tuple[object, str]] = field(default_factory=dict)
    drawing: threading.Lock = field(default_factory=threading.Lock)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """App factory; settings come from MONITOR_* environment variables unless tests pass them."""
    app = Flask(__name__)
    load_config(app.config, test_config)
    app.extensions["monitor"] = build_services(app.config)
    app.register_blueprint(views.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(models.bp)
    hooks.install(app)
    filters.install(app)
    return app


def build_services(config: dict[str, Any]) -> Services:
    app_metrics = Metrics()
    client = AirflowClient(
        config["AIRFLOW_URL"],
        str(config["AIRFLOW_USERNAME"]),
        str(config["AIRFLOW_PASSWORD"]),
        timeout=config["AIRFLOW_TIMEOUT"],
    )

    def source(dag_id: str) -> StatusSource:
        return StatusSource(
            client,
            dag_id,
            ttl=config["CACHE_TTL"],
            ui_url=config["AIRFLOW_UI_URL"],
            result_task_id=str(config["RESULT_TASK_ID"]),
            health_timeout=config["HEALTH_TIMEOUT"],
            history_limit=config["HISTORY_RUNS"],
            on_upstream_call=counted,
        )

    def counted(call: str, outcome: str) -> None:
        app_metrics.upstream_calls.labels(call, outcome).inc()

    status = source(str(config["TRAINING_DAG_ID"]))
    scoring = ScoringBatches(
        client, ttl=config["CACHE_TTL"], ui_url=config["AIRFLOW_UI_URL"], on_upstream_call=counted
    )
    return Services(
        status=status, metrics=app_metrics, models=ModelSources(status, source), scoring=scoring
    )
