"""What benchmarks share: a throw-away embedded stack, timed runs, the memory of processes,
statistics, and the report.

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
import re
import shutil
import statistics
import tempfile
import time
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
from testkit.flask_service import flask_pid
from testkit.ports import free_ports
from testkit.waiting import wait_until

if TYPE_CHECKING:  # kept out of the import: scale.py's measured processes import this module
    from airflow_rest import AirflowClient

RESULTS = REPO_ROOT / "bench" / "results"
BENCH_DAGS = REPO_ROOT / "bench" / "dags"
# Benchmarks trigger every run themselves: a scheduled run landing mid-measurement would skew it.
NO_SCHEDULES = {"ADCLICK_TRAINING_SCHEDULE": "none", "ADCLICK_MONITOR_SCHEDULE": "none"}
# A loaded shared machine can keep the api-server from answering for many seconds; the
# benchmarks measure run times, not the API's.
SLOW_CALL_S = 60.0
RUN_TIMEOUT_S = 600.0


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


def patient_client(stack: EmbeddedStack) -> AirflowClient:
    """The stack's admin client, waiting up to ``SLOW_CALL_S`` for each answer."""
    return stack.client(timeout=SLOW_CALL_S)


def timed_run(client: AirflowClient, dag_id: str) -> dict:
    """Trigger ``dag_id``; the wall time from the trigger request to the first poll (20 ms
    apart) that sees the run succeed, and the run's own queued -> end (``server_s``).

    A poll the api-server does not answer in time is repeated: on a loaded machine it can
    stall for a while, and the run's own timestamps are unaffected."""
    from airflow_rest import TERMINAL_STATES, AirflowUnreachable

    started = time.perf_counter()
    run_id = client.trigger(dag_id, {})["dag_run_id"]

    def finished() -> dict | None:
        try:
            run = client.get_run(dag_id, run_id)
        except AirflowUnreachable:
            return None
        return run if run["state"] in TERMINAL_STATES else None

    run = wait_until(finished, RUN_TIMEOUT_S, f"{dag_id} run {run_id} to finish", poll=0.02)
    wall = time.perf_counter() - started
    if run["state"] != "success":
        raise RuntimeError(f"{dag_id} run {run_id} ended {run['state']}")
    server = datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["queued_at"])
    return {
        "run_id": run_id,
        "wall_s": round(wall, 3),
        "server_s": round(server.total_seconds(), 3),
    }


def settled_run(client: AirflowClient, dag_id: str) -> dict:
    """``timed_run``, then ``wait_until_monitor_idle``: the next measurement starts on a
    quiet stack."""
    sample = timed_run(client, dag_id)
    wait_until_monitor_idle(client)
    return sample


def alternating(
    trials: dict[str, Callable[[], dict]], rounds: int, warm_up: bool = True
) -> dict[str, list[dict]]:
    """``{name: [sample per round]}``: each trial after the other, ``rounds`` times, so that
    a drift in the machine's load spreads over all of them; after one uncounted round that
    pays for cold imports and first parses, unless ``warm_up`` is false."""
    samples: dict[str, list[dict]] = {name: [] for name in trials}
    for counted in [False] * warm_up + [True] * rounds:
        for name, trial in trials.items():
            sample = trial()
            if counted:
                samples[name].append(sample)
    return samples


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


# -- memory (MB here are MiB: smaps counts KiB) and CPU ---------------------------------------
MEMORY_KINDS = ("pss", "rss", "uss")


def process_table() -> dict[int, dict]:
    """pid -> ppid, session and command line of every process visible now."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = {
            "ppid": int(fields[1]),
            "session": int(fields[3]),
            "cmd": cmdline.replace(b"\0", b" ").decode(errors="replace").strip()[:160],
        }
    return table


def memory_mb(pid: int) -> dict[str, float] | None:
    """PSS, RSS and USS (private pages) of one process; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    kb = {key: int(value) for key, value in re.findall(r"^(\w+):\s+(\d+)", text, re.MULTILINE)}
    private = kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)
    return {"pss": kb.get("Pss", 0) / 1024, "rss": kb.get("Rss", 0) / 1024, "uss": private / 1024}


def members_of(roots: dict[str, list[int]], table: dict[int, dict]) -> dict[str, list[int]]:
    """Each component's processes: a root and its descendants, the nearest root ancestor
    winning (a service one component started for another, such as the Flask monitor a task
    launched, is its own); then what is left of a root's session. Every process counted once."""
    root_owner = {root: name for name, pids in roots.items() for root in pids}
    owner: dict[int, str] = {}
    for pid in table:
        ancestor, seen = pid, set()
        while ancestor in table and ancestor not in seen and ancestor not in root_owner:
            seen.add(ancestor)
            ancestor = table[ancestor]["ppid"]
        if ancestor in root_owner:
            owner[pid] = root_owner[ancestor]
        elif table[pid]["session"] in root_owner:
            owner[pid] = root_owner[table[pid]["session"]]
    return {name: sorted(p for p, o in owner.items() if o == name) for name in roots}


def memory_of(members: dict[str, list[int]], table: dict[int, dict]) -> dict:
    """PSS/RSS/USS per component with its processes, and the totals."""
    components = {}
    for name, pids in members.items():
        found = [(pid, m) for pid in pids if (m := memory_mb(pid)) is not None]
        components[name] = {
            "processes": len(found),
            **{f"{k}_mb": round(sum(m[k] for _, m in found), 1) for k in MEMORY_KINDS},
            "detail": [
                {"pid": pid, "cmd": table[pid]["cmd"], "pss_mb": round(m["pss"], 1)}
                for pid, m in found
            ],
        }
    totals = {
        f"total_{k}_mb": round(sum(c[f"{k}_mb"] for c in components.values()), 1)
        for k in MEMORY_KINDS
    }
    return {"components": components, **totals}


def component_roots(stack: EmbeddedStack) -> dict[str, list[int]]:
    """The process each component of ``stack`` was started as; Flask: its gunicorn master."""
    roots = {component: [proc.pid] for component, proc in stack._procs.items()}
    roots["flask-monitor"] = [pid] if (pid := flask_pid(stack)) else []
    return roots


def stack_memory(roots: dict[str, list[int]]) -> dict:
    """``memory_of`` the components led by ``roots`` (``component_roots``), now."""
    table = process_table()
    return memory_of(members_of(roots, table), table)


def cpu_seconds(pid: int) -> float | None:
    """CPU time charged so far to the cgroup ``pid`` is in (v1 ``cpuacct``, or v2)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for _, controllers, path in (line.split(":", 2) for line in lines):
        path = path.strip("/")
        try:
            if path and "cpuacct" in controllers.split(","):
                return int(Path("/sys/fs/cgroup/cpuacct", path, "cpuacct.usage").read_text()) / 1e9
            if path and controllers == "":
                stat = Path("/sys/fs/cgroup", path, "cpu.stat").read_text()
                return int(re.search(r"^usage_usec (\d+)", stat, re.MULTILINE)[1]) / 1e6
        except (OSError, TypeError, ValueError):
            continue
    return None


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


def publish(report: Report, results: Path = RESULTS) -> None:
    """``<results>/<name>.md`` (title, method, targets, sections, plot), ``<name>.json``
    (targets and data, plus the machine) and ``<name>.png`` when there is a plot."""
    results.mkdir(parents=True, exist_ok=True)
    parts = [f"# {report.title}", report.method]
    if report.targets:
        rows = [(t.goal, t.measured, "yes" if t.met else "**no**") for t in report.targets]
        parts.append(table(("target", "measured", "met"), rows))
    parts += report.sections
    parts.append(
        f"Load average at the end: {os.getloadavg()[0]:.2f} (machine in {report.name}.json)."
    )
    if report.plot is not None:
        report.plot(results / f"{report.name}.png")
        parts.append(f"![{report.title}]({report.name}.png)")
    figures = {"machine": machine(), "targets": [vars(t) for t in report.targets], **report.data}
    (results / f"{report.name}.json").write_text(json.dumps(figures, indent=2))
    (results / f"{report.name}.md").write_text("\n\n".join(parts).rstrip() + "\n")
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
