"""Text from Airflow or the deployment is shown as text, never run as markup: a run note, a
conf value, a task id or an error answer holding ``<script>`` comes out escaped.

Needs no stack: the pages are rendered in the real app, from a run snapshot shaped like the
one the status layer builds, and from a real server that is not Airflow.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask, render_template
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from monitor.views import run_page
from testkit.snapshots import ESCAPED, HOSTILE, hostile_run


@pytest.mark.parametrize(("page", "state"), [("success", "success"), ("failure", "failed")])
def test_run_pages_escape_every_field(down_app: Flask, page: str, state: str) -> None:
    with down_app.test_request_context(f"/{page}"):
        html = run_page(hostile_run(state), page)

    assert "<script>" not in html
    for field in ("dag", "run", "note", "task", "v", "manual", "rest_api"):
        assert f"{field}{ESCAPED}" in html, field


def test_the_no_run_page_escapes_the_dag_id(down_app: Flask) -> None:
    run = {**hostile_run("success"), "state": None, "run_id": None}
    with down_app.test_request_context("/api"):
        html = render_template("no_runs.html", run=run)

    assert "<script>" not in html


@pytest.fixture
def not_airflow() -> Iterator[str]:
    """A real server that answers every call with a 500 whose body is markup."""
    server = make_server(
        "127.0.0.1", 0, lambda env, start: Response(HOSTILE, status=500)(env, start)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_unavailable_page_escapes_airflow_answers_and_the_dag_id(
    make_down_app, not_airflow: str
) -> None:
    app = make_down_app(AIRFLOW_URL=not_airflow, TRAINING_DAG_ID=f"dag{HOSTILE}")

    response = app.test_client().get("/success")

    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "<script>" not in html
    assert f"dag{ESCAPED}" in html and ESCAPED in html.replace(f"dag{ESCAPED}", "")
