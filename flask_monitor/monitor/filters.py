"""Jinja filters and globals for values from Airflow, which may be missing or of an unexpected
type: a page must render (escaped) whatever Airflow sends, never fail on it. The result's
tables and grid come from the macros shared with the mails (:mod:`result_views`)."""

from __future__ import annotations

from flask import Flask
from jinja2 import ChoiceLoader

import result_views
from monitor.urls import scoped_url


def install(app: Flask) -> None:
    loaders = [app.jinja_env.loader, result_views.loader()]
    app.jinja_env.loader = ChoiceLoader([loader for loader in loaders if loader is not None])
    result_views.install(app.jinja_env)
    app.jinja_env.filters.update(when=when, seconds=seconds)
    app.jinja_env.globals.update(result_of=result_of, scoped_url=scoped_url)
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True  # tidy HTML source


def result_of(run: dict) -> dict:
    """The run's result in the shared result format, as the macros take it."""
    model = run.get("model") or {}
    return {
        "model": model.get("name"),
        "task": run.get("task"),
        "labels": run.get("labels"),
        "class_names": run.get("class_names"),
        "gate": run.get("gate"),
        "metrics": run.get("metrics"),
    }


def when(value: object) -> str:
    """ISO timestamps, shortened for people: 2026-11-24 08:30:01 UTC."""
    if not isinstance(value, str) or not value:
        return "-"
    return value.replace("T", " ")[:19] + " UTC"


def seconds(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:.1f} s"
