"""The history page's charts: accuracy and duration of the last runs, oldest to latest."""

from __future__ import annotations

from flask import url_for
from markupsafe import Markup

from monitor.charts import Point, line_chart
from monitor.filters import metric, seconds, when


def charts(runs: list[dict]) -> dict[str, Markup]:
    """``{"accuracy": svg, "duration": svg}`` for ``runs`` (newest first, as Airflow lists)."""
    oldest_first = list(reversed(runs))
    return {
        "accuracy": line_chart(
            "accuracy",
            "Hold-out accuracy per run (a cross: no model was scored)",
            [_point(run, accuracy(run), metric) for run in oldest_first],
            lambda v: f"{v:.4f}",
            ceiling=1.0,
        ),
        "duration": line_chart(
            "duration",
            "Duration per run in seconds (a cross: not finished)",
            [_point(run, _duration(run), seconds) for run in oldest_first],
            lambda v: f"{v:.0f} s",
        ),
    }


def accuracy(run: dict) -> float | None:
    value = (run.get("metrics") or {}).get("accuracy")
    return float(value) if _is_number(value) else None


def _duration(run: dict) -> float | None:
    value = run.get("duration")
    return float(value) if _is_number(value) and run.get("end_date") else None


def _point(run: dict, value: float | None, shown) -> Point:
    state = str(run.get("state") or "none")
    label = f"{when(run.get('run_after'))} · {state} · {shown(value) if value is not None else '-'}"
    return Point(
        run_id=str(run["run_id"]),
        state=state,
        value=value,
        label=f"{run['run_id']}\n{label}",
        href=url_for("monitor.run", run_id=run["run_id"]),
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
