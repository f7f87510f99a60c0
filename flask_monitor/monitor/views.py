"""The routes people and scripts use for the default training DAG: /api, /api/status,
/success, /failure, /history, /runs/<run id>, /health. Every model's own pages (monitor.models)
are drawn by the same functions, for its own DAG.

/api sends a finished run to /success or /failure (the entry point people bookmark) and shows
a queued or running run as exactly that. /success and /failure never pretend: opened while
the latest run is in another state, they show that state with a banner saying so. /history
lists the last runs with charts; each run has its own page under /runs/.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from adclick_contract.instance import CHALLENGE_PARAMETER, MAX_CHALLENGE_LENGTH, proof
from monitor.history import charts, gate_metric
from monitor.status import StatusSource, StatusUnavailable

bp = Blueprint("monitor", __name__)

RETRY_AFTER_S = "5"
PAGE_STATES = {"success": "success", "failure": "failed"}


def _services():
    return current_app.extensions["monitor"]


def latest_run(source: StatusSource | None = None) -> dict:
    """The shared snapshot of the latest run; raises StatusUnavailable. Feeds /metrics."""
    services = _services()
    source = source or services.status
    lookup = source.lookup()
    services.metrics.observe(source.dag_id, lookup)
    return lookup.unwrap()


def unavailable_page(
    error: StatusUnavailable, source: StatusSource | None = None
) -> tuple[str, int, dict]:
    dag_id = (source or _services().status).dag_id
    page = render_template("unavailable.html", error=error, dag_id=dag_id)
    return page, 503, {"Retry-After": RETRY_AFTER_S}


def recent_runs(source: StatusSource | None = None) -> dict:
    """The shared snapshot of the last runs, newest first; raises StatusUnavailable."""
    return (source or _services().status).history().unwrap()


def run_page(run: dict, page: str) -> str:
    if run["state"] is None:
        return render_template("no_runs.html", run=run)
    return render_template("run.html", run=run, page=page, expected=PAGE_STATES.get(page))


def latest_page(page: str, source: StatusSource | None = None) -> ResponseReturnValue:
    try:
        run = latest_run(source)
    except StatusUnavailable as error:
        return unavailable_page(error, source)
    return run_page(run, page)


def status_answer(source: StatusSource | None = None) -> Response | tuple[Response, int, dict]:
    try:
        return jsonify(latest_run(source))
    except StatusUnavailable as error:
        dag_id = (source or _services().status).dag_id
        body = {"error": error.cause, "message": str(error), "dag_id": dag_id}
        return jsonify(body), 503, {"Retry-After": RETRY_AFTER_S}


def history_page(source: StatusSource | None = None) -> ResponseReturnValue:
    source = source or _services().status
    try:
        recent = recent_runs(source)
    except StatusUnavailable as error:
        return unavailable_page(error, source)
    return rendered_once(
        f"history {request.path}",
        recent,
        lambda: render_template(
            "history.html",
            history=recent,
            charts=charts(recent["runs"]),
            gate_metric=gate_metric(recent["runs"]),
        ),
    )


def run_by_id(run_id: str, source: StatusSource | None = None) -> ResponseReturnValue:
    """A run's own page, for the latest run and the others on the history page. Runs further
    back are not looked up: each id asked for would cost Airflow calls, whoever asks."""
    try:
        latest = latest_run(source)
        if latest["run_id"] == run_id:
            return run_page(latest, "run")
        recent = recent_runs(source)
    except StatusUnavailable as error:
        return unavailable_page(error, source)
    found = next((r for r in recent["runs"] if r["run_id"] == run_id), None)
    if found is None:
        return render_template("run_not_found.html", run_id=run_id, history=recent), 404
    return run_page(found, "run")


@bp.get("/api")
def api():
    try:
        run = latest_run()
    except StatusUnavailable as error:
        return unavailable_page(error)
    if run["state"] == "success":
        return redirect(url_for(".success"))
    if run["state"] == "failed":
        return redirect(url_for(".failure"))
    return run_page(run, "api")


@bp.get("/api/status")
def api_status() -> Response | tuple[Response, int, dict]:
    return status_answer()


@bp.get("/success")
def success():
    return latest_page("success")


@bp.get("/failure")
def failure():
    return latest_page("failure")


@bp.get("/history")
def history():
    return history_page()


def rendered_once(page: str, snapshot: object, render: Callable[[], str]) -> str:
    """``render()``, once per snapshot: the cache hands every request of a TTL window the
    same snapshot object, so the page (charts and all) is drawn once per window, not once per
    request. Holding the snapshot keeps its identity from being reused. The requests that
    waited for a new snapshot together wait for its one drawing too."""
    services = _services()
    with services.drawing:
        shown = services.pages.get(page)
        if shown is not None and shown[0] is snapshot:
            return shown[1]
        html = render()
        services.pages[page] = (snapshot, html)
        return html


@bp.get("/runs/<path:run_id>")
def run(run_id: str):
    return run_by_id(run_id)


@bp.get("/health")
def health() -> Response:
    """200 whenever this service serves requests; says whether Airflow answers right now,
    and, asked with a challenge, proves it is the instance its launcher started."""
    answer = {"status": "ok", "airflow": _services().status.airflow_health()}
    key = current_app.config["INSTANCE_KEY"]
    challenge = request.args.get(CHALLENGE_PARAMETER, "")
    if key and 0 < len(challenge) <= MAX_CHALLENGE_LENGTH:
        answer["proof"] = proof(key, challenge)
    return jsonify(answer)
