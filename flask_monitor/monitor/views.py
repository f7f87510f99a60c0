"""The routes people and scripts use: /api, /api/status, /success, /failure, /health."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, url_for

from monitor.status import StatusUnavailable

bp = Blueprint("status", __name__)


def _source():
    return current_app.extensions["monitor_status"]


def _metrics():
    return current_app.extensions["monitor_metrics"]


def load_snapshot() -> dict:
    """The cached snapshot; counts cache use and remembers the last state for /metrics."""
    snapshot, from_cache = _source().snapshot()
    _metrics().cache.labels("hit" if from_cache else "miss").inc()
    _metrics().record_state(snapshot.get("state"))
    return snapshot


def unavailable_page(error: StatusUnavailable):
    return render_template("unavailable.html", error=error, dag_id=_source().dag_id), 503


@bp.get("/api")
def api():
    """The entry point: success -> /success, failure -> /failure; anything else shown as is."""
    try:
        snapshot = load_snapshot()
    except StatusUnavailable as error:
        return unavailable_page(error)
    if snapshot["state"] == "success":
        return redirect(url_for("status.success"))
    if snapshot["state"] == "failed":
        return redirect(url_for("status.failure"))
    return render_template("run.html", run=snapshot, page="latest")


@bp.get("/api/status")
def api_status():
    try:
        return jsonify(load_snapshot())
    except StatusUnavailable as error:
        return jsonify(
            {"error": error.cause, "detail": str(error), "dag_id": _source().dag_id}
        ), 503


def _run_page(page: str):
    try:
        snapshot = load_snapshot()
    except StatusUnavailable as error:
        return unavailable_page(error)
    return render_template("run.html", run=snapshot, page=page)


@bp.get("/success")
def success():
    return _run_page("success")


@bp.get("/failure")
def failure():
    return _run_page("failure")


@bp.get("/health")
def health():
    """Always 200 while this service runs; says whether Airflow answers right now."""
    try:
        snapshot = load_snapshot()
        airflow = {"reachable": True, "error": None, "latest_state": snapshot.get("state")}
    except StatusUnavailable as error:
        reachable = error.cause != "airflow_unreachable"
        airflow = {"reachable": reachable, "error": str(error), "cause": error.cause}
    return jsonify({"status": "ok", "airflow": airflow})
