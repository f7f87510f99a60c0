"""Line charts of values over runs, drawn here as inline SVG: no script, no remote file, so
the pages work offline and under a CSP that allows neither.

Colours and text sizes come from the page's stylesheet (classes, no inline styles), so one
chart reads in light and dark mode and on a phone alike. Every run gets exactly one point: a
dot where it has a value, a cross in the lane under the plot where it has none (a failed run
has no score), apart from every value the axis can show; failed runs are marked either way.
The y axis is ticked at round values. Each point links to its run's page and names it in a
tooltip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from typing_extensions import TypeIs

WIDTH, HEIGHT = 720, 250
LEFT, RIGHT, TOP = 88, 16, 16
PLOT_BOTTOM = 180  # the lowest gridline; the crosses' lane and the x labels are below it
MISSING_LANE = 206
MAX_TICKS = 5
NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


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
    floor: float | None = 0.0,
    ceiling: float | None = None,
    unit: str = "",
) -> Markup:
    """An SVG chart of ``points`` (oldest first) on a y axis within ``floor`` and
    ``ceiling`` (None: unbounded), ticked at round values written with ``unit``."""
    values = [p.value for p in points if p.value is not None]
    ticks = nice_ticks(values, floor, ceiling)
    low, high = ticks[0], ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, PLOT_BOTTOM - TOP
    step = plot_w / max(len(points) - 1, 1)
    decimals = tick_decimals(ticks)

    def x(i: int) -> float:
        return LEFT + (i * step if len(points) > 1 else plot_w / 2)

    def y(value: float) -> float:
        return TOP + plot_h * (1 - (value - low) / (high - low))

    parts = [
        f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in ticks:
        ty = y(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text class="axis tick" x="{LEFT - 8}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{tick:.{decimals}f}{escape(unit)}</text>"
        )
    line = " ".join(
        f"{x(i):.1f},{y(p.value):.1f}" for i, p in enumerate(points) if p.value is not None
    )
    if line:
        parts.append(f'<polyline class="line" points="{line}"/>')
    if any(p.value is None for p in points):
        parts.append(
            f'<text class="axis lane" x="{LEFT - 8}" y="{MISSING_LANE + 4}" '
            'text-anchor="end">none</text>'
        )
    for i, point in enumerate(points):
        parts.append(_point(point, x(i), MISSING_LANE if point.value is None else y(point.value)))
    if points:
        parts.append(
            f'<text class="axis" x="{LEFT}" y="{HEIGHT - 6}">oldest</text>'
            f'<text class="axis" x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">'
            "latest</text>"
        )
    else:
        parts.append(
            f'<text class="axis" x="{WIDTH / 2}" y="{(TOP + PLOT_BOTTOM) / 2}" '
            'text-anchor="middle">no runs yet</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _point(point: Point, cx: float, cy: float) -> str:
    kind = "missing" if point.value is None else "value"
    state = escape(point.state or "none")
    if point.value is None:  # a cross in the lane under the plot
        mark = (
            f'<path d="M{cx - 7:.1f},{cy - 7:.1f} l14,14 m0,-14 l-14,14"/>'
            f'<circle class="hit" cx="{cx:.1f}" cy="{cy:.1f}" r="8"/>'
        )
    else:
        mark = f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5"/>'
    return (
        f'<a href="{escape(point.href)}" class="point {kind} {state}" '
        f'data-run-id="{escape(point.run_id)}" data-state="{state}">'
        f"<title>{escape(point.label)}</title>{mark}</a>"
    )


def nice_ticks(values: list[float], floor: float | None, ceiling: float | None) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering ``values``
    with some room, within ``floor`` and ``ceiling``; at least two, at most ``MAX_TICKS``."""
    if values:
        low, high = min(values), max(values)
        pad = (high - low) * 0.1 or max(abs(high) * 0.05, 0.01)
        low, high = low - pad, high + pad
    else:
        low = floor if floor is not None else 0.0
        high = ceiling if ceiling is not None else low + 1.0
    if floor is not None:
        low = max(floor, low)
    if ceiling is not None:
        high = min(ceiling, high)
    if high <= low:
        high = low + 1.0
    for divisions in range(MAX_TICKS - 1, 0, -1):
        step = _nice_step((high - low) / divisions)
        first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
        if last - first + 1 <= MAX_TICKS:
            return [round(k * step, 10) for k in range(first, last + 1)]
    step = _nice_step(high - low)
    return [math.floor(low / step) * step, math.ceil(high / step) * step]


def _nice_step(raw: float) -> float:
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in NICE_STEPS if m * power >= raw * (1 - 1e-9))


def tick_decimals(ticks: list[float]) -> int:
    """The fewest decimals that write every tick exactly."""
    for decimals in range(7):
        if all(abs(round(t, decimals) - t) < 1e-9 for t in ticks):
            return decimals
    return 6


def is_number(value: object) -> TypeIs[int | float]:
    """A value a chart can plot: an int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)
