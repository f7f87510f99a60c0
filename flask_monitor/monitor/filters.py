"""Jinja filters for values from Airflow, which may be missing or of an unexpected type:
a page must render (escaped) whatever Airflow sends, never fail on it."""

from __future__ import annotations

from flask import Flask


def install(app: Flask) -> None:
    app.jinja_env.filters.update(
        when=when, seconds=seconds, metric=metric, confusion=confusion, percent=percent
    )
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


def percent(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{100 * value:.1f} %"


def metric(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:.4f}"


CLASS_NAMES = ("no click", "click")  # label 0 and 1 of the model's target


def confusion(matrix: object) -> list[list[dict]] | None:
    """``[[tn, fp], [fn, tp]]`` as grid cells: count, share of the actual class (the row),
    and whether the prediction was right; None unless it is a 2x2 matrix of counts."""
    if not (isinstance(matrix, list) and len(matrix) == 2):
        return None
    if not all(isinstance(row, list) and len(row) == 2 for row in matrix):
        return None
    if not all(_is_count(n) for row in matrix for n in row):
        return None
    grid = []
    for actual, row in enumerate(matrix):
        total = sum(row)
        grid.append(
            [
                {
                    "count": count,
                    "rate": count / total if total else None,
                    "correct": actual == predicted,
                    "actual": CLASS_NAMES[actual],
                    "predicted": CLASS_NAMES[predicted],
                }
                for predicted, count in enumerate(row)
            ]
        )
    return grid


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
