"""Line charts of values over runs, drawn here as inline SVG: no script, no remote file, so
the pages work offline and under a CSP that allows neither.

Colours come from the page's stylesheet (classes, no inline styles), so one chart reads in
light and dark mode alike. Every run gets exactly one point: a dot where it has a value, a
cross on the baseline where it has none (a failed run has no accuracy); failed runs are
marked either way. Each point links to its run's page and names it in a tooltip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40
TICKS = 4


@dataclass(frozen=True)
class Point:
    run_id: str
    state: str
    value: float | None
    label: str  # the tooltip: when, state and value
    href: str


def line_chart(
    name: str,
    title: str,
    points: list[Point],
    fmt: Callable[[float], str],
    floor: float = 0.0,
    ceiling: float | None = None,
) -> Markup:
    """An SVG chart of ``points`` (oldest first) on a y axis within ``floor`` and
    ``ceiling``; ``fmt`` writes the axis labels."""
    values = [p.value for p in points if p.value is not None]
    low, high = _range(values, floor, ceiling)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(points) - 1, 1)

    def x(i: int) -> float:
        return LEFT + (i * step if len(points) > 1 else plot_w / 2)

    def y(value: float) -> float:
        return TOP + plot_h * (1 - (value - low) / (high - low))

    parts = [
        f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for k in range(TICKS + 1):
        tick = low + (high - low) * k / TICKS
        ty = y(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text class="axis" x="{LEFT - 8}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{escape(fmt(tick))}</text>"
        )
    line = " ".join(
        f"{x(i):.1f},{y(p.value):.1f}" for i, p in enumerate(points) if p.value is not None
    )
    if line:
        parts.append(f'<polyline class="line" points="{line}"/>')
    base = TOP + plot_h
    for i, point in enumerate(points):
        parts.append(_point(point, x(i), base if point.value is None else y(point.value)))
    if points:
        parts.append(
            f'<text class="axis" x="{LEFT}" y="{HEIGHT - 12}">oldest</text>'
            f'<text class="axis" x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" text-anchor="end">'
            "latest</text>"
        )
    else:
        parts.append(
            f'<text class="axis" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            "no runs yet</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _point(point: Point, cx: float, cy: float) -> str:
    kind = "missing" if point.value is None else "value"
    state = escape(point.state or "none")
    if point.value is None:  # a cross on the baseline
        mark = (
            f'<path d="M{cx - 5:.1f},{cy - 5:.1f} l10,10 m0,-10 l-10,10"/>'
            f'<circle class="hit" cx="{cx:.1f}" cy="{cy:.1f}" r="8"/>'
        )
    else:
        mark = f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5"/>'
    return (
        f'<a href="{escape(point.href)}" class="point {kind} {state}" '
        f'data-run-id="{escape(point.run_id)}" data-state="{state}">'
        f"<title>{escape(point.label)}</title>{mark}</a>"
    )


def _range(values: list[float], floor: float, ceiling: float | None) -> tuple[float, float]:
    """The y range: the values with some room, within the bounds, never empty."""
    if not values:
        return floor, ceiling if ceiling is not None else floor + 1.0
    low, high = min(values), max(values)
    pad = (high - low) * 0.15 or max(abs(high) * 0.05, 0.01)
    low, high = max(floor, low - pad), high + pad
    if ceiling is not None:
        high = min(ceiling, high)
    return (low, high) if high > low else (low - pad, high)
