"""Jinja filters for values from Airflow, which may be missing or of an unexpected type:
a page must render (escaped) whatever Airflow sends, never fail on it."""

from __future__ import annotations

from flask import Flask


def install(app: Flask) -> None:
    app.jinja_env.filters.update(when=when, seconds=seconds, metric=metric)
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True  # tidy HTML source


def when(value: object) -> str:
    """ISO timestamps, shortened for people: 2026-11-24 08:30:01 UTC."""
    if not isinstance(value, str) or not value:
        return "-"
    return value.replace("T", " ")[:19] + " UTC"


def seconds(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:.1f} s"


def metric(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:.4f}"
