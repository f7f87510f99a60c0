"""Each model's own pages: every training DAG Airflow lists (tags ``TRAINING_TAGS`` and the
model's name) under /models/<name>: its latest run, its history, its runs and its status as
JSON, drawn like the default DAG's pages."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, current_app, render_template
from flask.typing import ResponseReturnValue

from adclick_contract import TRAINING_TAGS
from monitor import views
from monitor.scoring import batch_anchor, drift_chart
from monitor.status import StatusSource, StatusUnavailable

bp = Blueprint("models", __name__, url_prefix="/models")


def _source(name: str) -> StatusSource:
    """The status source of model ``name``; 404 when Airflow lists no such training DAG."""
    source = current_app.extensions["monitor"].models.source(name)
    if source is None:
        abort(404)
    return source


@bp.get("/")
def index() -> ResponseReturnValue:
    services = current_app.extensions["monitor"]
    try:
        models = services.models.models()
    except StatusUnavailable as error:
        return views.unavailable_page(error)
    return render_template(
        "models.html", models=models, default=services.status.dag_id, tags=TRAINING_TAGS
    )


def _for_model(
    name: str, draw: Callable[[StatusSource], ResponseReturnValue]
) -> ResponseReturnValue:
    try:
        source = _source(name)
    except StatusUnavailable as error:
        return views.unavailable_page(error)
    return draw(source)


@bp.get("/<name>")
def latest(name: str) -> ResponseReturnValue:
    return _for_model(name, lambda source: views.latest_page("latest", source))


@bp.get("/<name>/status")
def status(name: str) -> ResponseReturnValue:
    return _for_model(name, views.status_answer)


@bp.get("/<name>/history")
def history(name: str) -> ResponseReturnValue:
    return _for_model(name, views.history_page)


@bp.get("/<name>/scoring")
def scoring(name: str) -> ResponseReturnValue:
    """The model's latest scoring batches: input, rows, version, state, drift, files."""
    services = current_app.extensions["monitor"]
    try:
        _source(name)
        lookup = services.scoring.lookup(name)
        services.metrics.observe_scoring(name, lookup)
        batches = lookup.unwrap()
    except StatusUnavailable as error:
        return views.unavailable_page(error)
    return views.rendered_once(
        f"scoring {name}",
        batches,
        lambda: render_template(
            "scoring.html",
            name=name,
            scoring=batches,
            chart=drift_chart(batches["batches"]),
            anchor=batch_anchor,
        ),
    )


@bp.get("/<name>/runs/<path:run_id>")
def run(name: str, run_id: str) -> ResponseReturnValue:
    return _for_model(name, lambda source: views.run_by_id(run_id, source))
