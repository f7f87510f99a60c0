"""The history page's charts: the gate's metric and the duration of the last runs, oldest to
latest."""

from __future__ import annotations

from markupsafe import Markup

import result_views
from monitor.charts import Point, is_number, line_chart
from monitor.filters import seconds, when
from monitor.urls import scoped_url


def gate_metric(runs: list[dict]) -> str | None:
    """The metric the latest scored run was gated on (newest first, as Airflow lists); for
    runs that name no gate, their task's first metric; None before any run was scored."""
    for run in runs:
        if isinstance(run.get("gate"), dict) and isinstance(run["gate"].get("metric"), str):
            return run["gate"]["metric"]
        if run.get("metrics"):
            task = run.get("task") or result_views.task_of({"metrics": run["metrics"]})
            return result_views.HEADLINE[task][0]
    return None


def charts(runs: list[dict]) -> dict[str, Markup]:
    """``{"gate": svg, "duration": svg}`` for ``runs`` (newest first, as Airflow lists)."""
    oldest_first = list(reversed(runs))
    name = gate_metric(runs)
    label = result_views.metric_label(name) if name else "Gate metric"
    values = [metric_value(run, name) for run in oldest_first]
    known = [v for v in values if v is not None]
    return {
        "gate": line_chart(
            "gate",
            f"Hold-out {label} per run (a cross: no model was scored)",
            [
                _point(run, value, result_views.format_metric)
                for run, value in zip(oldest_first, values, strict=True)
            ],
            floor=0.0 if all(v >= 0 for v in known) else None,
            ceiling=1.0 if known and all(0 <= v <= 1 for v in known) else None,
        ),
        "duration": line_chart(
            "duration",
            "Duration per run in seconds (a cross: not finished)",
            [_point(run, _duration(run), seconds) for run in oldest_first],
            unit=" s",
        ),
    }


def metric_value(run: dict, name: str | None) -> float | None:
    value = (run.get("metrics") or {}).get(name) if name else None
    return float(value) if is_number(value) else None


def _duration(run: dict) -> float | None:
    value = run.get("duration")
    return float(value) if is_number(value) and run.get("end_date") else None


def _point(run: dict, value: float | None, shown) -> Point:
    state = str(run.get("outcome") or run.get("state") or "none")
    label = f"{when(run.get('run_after'))} · {state} · {shown(value) if value is not None else '-'}"
    return Point(
        run_id=str(run["run_id"]),
        state=state,
        value=value,
        label=f"{run['run_id']}\n{label}",
        href=scoped_url("run", run_id=run["run_id"]),
    )
