"""Model service: the champion of each model of the contract, online, over HTTP.

Served by gunicorn (``model_server/gunicorn.conf.py``); each worker loads every champion and
follows promotions itself (:mod:`model_server.champions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask

from adclick.scoring import Champion
from model_server import alerts, hooks, metrics, views
from model_server.champions import Champions, ServedModel
from model_server.config import load_config
from model_server.metrics import Metrics


@dataclass(frozen=True)
class Services:
    champions: Champions
    metrics: Metrics


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """App factory; settings come from MODEL_SERVER_* environment variables unless tests pass
    them. Loads every current champion before it returns."""
    app = Flask(__name__)
    load_config(app.config, test_config)
    app.extensions["model_server"] = build_services(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(metrics.bp)
    hooks.install(app)
    app.extensions["model_server"].champions.start()
    return app


def build_services(app: Flask) -> Services:
    config = app.config
    app_metrics = Metrics()

    def swapped(served: ServedModel, old: Champion | None) -> None:
        new = served.champion
        assert new is not None
        app_metrics.serving(served.spec.name, new.version, old.version if old else None)
        app_metrics.loads.labels(served.spec.name, "loaded").inc()

    def rejected(served: ServedModel, pointer: bytes, error: Exception) -> None:
        app_metrics.loads.labels(served.spec.name, "rejected").inc()
        serving = served.champion.version if served.champion else None
        alerts.send(config, *alerts.champion_rejected(served.spec.name, serving, str(error)))

    champions = Champions(
        config["MODELS_DIR"],
        config["MODEL_ROOT"],
        interval=config["POLL_INTERVAL"],
        on_rejected=rejected,
        on_swapped=swapped,
    )
    return Services(champions=champions, metrics=app_metrics)
