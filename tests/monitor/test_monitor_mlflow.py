"""The run page links to the MLflow run and model version load_model recorded, and only to
http(s) addresses: XCom is editable by an admin, so nothing else from it becomes a link."""

from __future__ import annotations

from flask import Flask

from monitor.runs import _mlflow
from monitor.views import run_page
from testkit.snapshots import hostile_run

TRACKED = {
    "run_id": "abc123",
    "experiment_id": "1",
    "model_name": "adclick",
    "model_version": "4",
    "run_url": "http://127.0.0.1:5001/#/experiments/1/runs/abc123",
    "version_url": "http://127.0.0.1:5001/#/models/adclick/versions/4",
    "passed": True,
}


def test_the_page_links_the_mlflow_run_and_the_champion_version(down_app: Flask) -> None:
    run = {**hostile_run("success"), "model": {"version": "v", "promoted": True}}
    run["model"]["mlflow"] = _mlflow(TRACKED)
    with down_app.test_request_context("/success"):
        html = run_page(run, "success")
    assert f'href="{TRACKED["run_url"]}"' in html
    assert f'href="{TRACKED["version_url"]}">adclick version 4</a> (champion)' in html


def test_links_that_are_not_http_are_dropped_and_odd_values_ignored() -> None:
    edited = {**TRACKED, "run_url": "javascript:alert(1)", "model_version": ["x"], "passed": "yes"}
    kept = _mlflow(edited)
    assert kept["run_url"] is None and kept["version_url"] == TRACKED["version_url"]
    assert "model_version" not in kept and kept["champion"] is False
    assert _mlflow(None) is None and _mlflow("text") is None
