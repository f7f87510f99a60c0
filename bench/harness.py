"""What every benchmark shares: a throw-away embedded stack, statistics, and the report.

A benchmark measures its subject and, in the same run, a baseline to hold it against (absolute
times on a shared machine drift from one run to the next), then publishes one ``Report``:
``bench/results/<name>.md`` (targets first, then the tables), ``<name>.json`` (every figure
plus the machine) and, when it draws one, ``<name>.png``. ``--results DIR`` writes elsewhere
(a trial run at a small size must not replace the published figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR_DAG
from adclick_airflow.settings import TRAINING_DAG_ID
from embedded.stack import REPO_ROOT, EmbeddedStack
from testkit.datasets import SAMPLE_CSV
from testkit.ports import free_ports
from testkit.waiting import wait_until

if TYPE_CHECKING:  # kept out of the import: scale.py's measured processes import this module
    from airflow_rest import AirflowClient

RESULTS = REPO_ROOT / "bench" / "results"
BENCH_DAGS = REPO_ROOT / "bench" / "dags"
# Benchmarks trigger every run themselves: a scheduled run landing mid-measurement would skew it.
NO_SCHEDULES = {"ADCLICK_TRAINING_SCHEDULE": "none", "ADCLICK_MONITOR_SCHEDULE": "none"}


# -- the system under test ------------------------------------------------------------------
@contextmanager
def embedded_stack(
    extra_dags: Sequence[Path] = (), extra_env: dict[str, str] | None = None
) -> Iterator[EmbeddedStack]:
    """A started embedded stack with the shipped settings, in a temporary directory, on free
    ports, with the project's DAGs plus ``extra_dags`` (the project's parsed); stopped and
    deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="adclick-bench-") as tmp:
        root = Path(tmp)
        dags, data = root / "dags", root / "data"
        dags.mkdir()
        data.mkdir()
        for source in [*(REPO_ROOT / "dags").glob("*.py"), *extra_dags]:
            (dags / source.name).symlink_to(source)
        shutil.copy(SAMPLE_CSV, data)
        stack = EmbeddedStack(
            home=root / "airflow",
            ports=free_ports(),
            dags_dir=dags,
            data_dir=data,
            model_dir=root / "model",
            extra_env={**NO_SCHEDULES, **(extra_env or {})},
        )
        stack.start(timeout=600)  # generous: a loaded machine boots Airflow slowly
        try:
            stack.wait_for_dags((TRAINING_DAG_ID, MONITOR_DAG), timeout=600)
            yield stack
        finally:
            stack.stop()


def compose_stack_client(timeout: float = 10.0) -> AirflowClient:
    """Admin client of the Compose stack scripts/e2e-docker brought up (its E2E_* variables)."""
    from testkit.compose import ComposeStack

    if not os.environ.get("E2E_AIRFLOW_URL"):
        raise SystemExit("no Compose stack: run this through bench/celery-stack")
    return ComposeStack.from_env().api("admin", timeout=timeout)


def wait_until_monitor_idle(client: AirflowClient, timeout: float = 120.0) -> None:
    """A training run ends by triggering the monitor DAG; its tasks would compete for the
    executor's slots with whatever is measured next, so wait for its runs to finish."""
    from airflow_rest import TERMINAL_STATES

    wait_until(
        lambda: all(r["state"] in TERMINAL_STATES for r in client.runs(MONITOR_DAG, 5)),
        timeout,
        f"{MONITOR_DAG} runs to finish",
        poll=0.2,
    )


# -- figures ----------------------------------------------------------------------------------
def spread(values: Iterable[float | None], digits: int = 3) -> dict:
    """n, median, p90, min and max of the measured values; ``missed`` counts the Nones."""
    values = list(values)
    measured = sorted(v for v in values if v is not None)
    if not measured:
        return {"n": 0, "missed": len(values)}
    p90 = measured[min(len(measured) - 1, round(0.9 * (len(measured) - 1)))]
    return {
        "n": len(measured),
        "missed": len(values) - len(measured),
        "median": round(statistics.median(measured), digits),
        "p90": round(p90, digits),
        "min": round(measured[0], digits),
        "max": round(measured[-1], digits),
    }


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# -- the report -------------------------------------------------------------------------------
@dataclass
class Target:
    goal: str
    measured: str
    met: bool


@dataclass
class Report:
    """One benchmark's outcome. ``method`` says what was measured and against what;
    ``sections`` are Markdown blocks (tables, notes); ``data`` goes to the JSON whole;
    ``plot(path)``, if given, draws the figure."""

    name: str
    title: str
    method: str
    targets: list[Target] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    plot: Callable[[Path], None] | None = None


def machine() -> dict[str, object]:
    """Where the figures were measured, written beside them."""
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_results(name: str, report: dict, markdown: str, results: Path = RESULTS) -> None:
    """``<results>/<name>.json`` (everything, plus the machine) and ``<name>.md``."""
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps({"machine": machine(), **report}, indent=2))
    (results / f"{name}.md").write_text(markdown.rstrip() + "\n")


def publish(report: Report, results: Path = RESULTS) -> None:
    parts = [f"# {report.title}", report.method]
    if report.targets:
        rows = [(t.goal, t.measured, "yes" if t.met else "**no**") for t in report.targets]
        parts.append(table(("target", "measured", "met"), rows))
    parts += report.sections
    parts.append(
        f"Load average at the end: {os.getloadavg()[0]:.2f} (machine in {report.name}.json)."
    )
    if report.plot is not None:
        results.mkdir(parents=True, exist_ok=True)
        report.plot(results / f"{report.name}.png")
        parts.append(f"![{report.title}]({report.name}.png)")
    targets = [vars(t) for t in report.targets]
    write_results(report.name, {"targets": targets, **report.data}, "\n\n".join(parts), results)
    print(
        "\n".join(
            f"{'met' if t.met else 'NOT met'}: {t.goal}: {t.measured}" for t in report.targets
        )
    )


def arguments(description: str) -> argparse.ArgumentParser:
    """A benchmark's command line, with ``--results``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where to write (default bench/results)"
    )
    return parser


def pyplot():
    """matplotlib's pyplot without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
