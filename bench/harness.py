"""What benchmarks share: the stacks, timed runs, wrk, samplers, statistics, the command line
and the ``Report`` of each result."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
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
from testkit.debian import ensure_debian_tool
from testkit.ports import free_ports
from testkit.waiting import wait_until

if TYPE_CHECKING:  # kept out of the import: scale.py's measured processes import this module
    from airflow_rest import AirflowClient
    from testkit.compose import ComposeStack

RESULTS = REPO_ROOT / "bench" / "results"
BENCH_DAGS = REPO_ROOT / "bench" / "dags"
NOTES = "## Notes"
# Benchmarks trigger every run themselves: a scheduled run landing mid-measurement would skew it.
NO_SCHEDULES = {"ADCLICK_TRAINING_SCHEDULE": "none", "ADCLICK_MONITOR_SCHEDULE": "none"}
# A loaded machine can keep the api-server from answering for many seconds; runs are measured.
SLOW_CALL_S, RUN_TIMEOUT_S = 60.0, 600.0


@contextmanager
def embedded_stack(
    extra_dags: Sequence[Path] = (), extra_env: dict[str, str] | None = None
) -> Iterator[EmbeddedStack]:
    """A started embedded stack as shipped, in a temporary directory, plus ``extra_dags``."""
    with tempfile.TemporaryDirectory(prefix="adclick-bench-") as tmp:
        root = Path(tmp)
        dirs = {f"{name}_dir": root / name for name in ("dags", "data", "model")}
        dirs["dags_dir"].mkdir()
        dirs["data_dir"].mkdir()
        for source in [*(REPO_ROOT / "dags").glob("*.py"), *extra_dags]:
            (dirs["dags_dir"] / source.name).symlink_to(source)
        shutil.copy(SAMPLE_CSV, dirs["data_dir"])
        env = {**NO_SCHEDULES, **(extra_env or {})}
        stack = EmbeddedStack(root / "airflow", free_ports(), **dirs, extra_env=env)
        stack.start(timeout=600)  # generous: a loaded machine boots Airflow slowly
        try:
            stack.wait_for_dags((TRAINING_DAG_ID, MONITOR_DAG), timeout=600)
            yield stack
        finally:
            stack.stop()


def compose_stack() -> ComposeStack:
    """The Compose stack scripts/e2e-docker brought up (its E2E_* variables)."""
    from testkit.compose import ComposeStack, missing_variables

    if missing := missing_variables():
        raise SystemExit(
            f"no Compose stack ({', '.join(missing)} unset): run this through "
            "bench/celery-stack or scripts/e2e-docker"
        )
    return ComposeStack.from_env()


def timed_run(client: AirflowClient, dag_id: str) -> dict:
    """Trigger ``dag_id``: the wall time to the first poll (20 ms apart) seeing it succeed."""
    from airflow_rest import TERMINAL_STATES, AirflowUnreachable

    started = time.perf_counter()
    run_id = client.trigger(dag_id, {})["dag_run_id"]

    def finished() -> dict | None:
        try:
            run = client.get_run(dag_id, run_id)
        except AirflowUnreachable:  # a busy api-server: ask again
            return None
        return run if run["state"] in TERMINAL_STATES else None

    run = wait_until(finished, RUN_TIMEOUT_S, f"{dag_id} run {run_id} to finish", poll=0.02)
    wall = time.perf_counter() - started
    if run["state"] != "success":
        raise RuntimeError(f"{dag_id} run {run_id} ended {run['state']}")
    return {"run_id": run_id, "wall_s": round(wall, 3)}


def settled_run(client: AirflowClient, dag_id: str) -> dict:
    """``timed_run``, then ``wait_until_monitor_idle``: the next one starts on a quiet stack."""
    sample = timed_run(client, dag_id)
    wait_until_monitor_idle(client)
    return sample


def alternating(
    trials: dict[str, Callable[[], dict]], rounds: int, warm_up: bool = True
) -> dict[str, list[dict]]:
    """``{name: [sample per round]}``: the trials in turn, after an uncounted round."""
    samples: dict[str, list[dict]] = {name: [] for name in trials}
    for counted in [False] * warm_up + [True] * rounds:
        for name, trial in trials.items():
            sample = trial()
            if counted:
                samples[name].append(sample)
    return samples


def wait_until_monitor_idle(client: AirflowClient, timeout: float = 120.0) -> None:
    """Wait for the monitor DAG's runs, whose tasks would share the executor's slots."""
    from airflow_rest import TERMINAL_STATES

    idle = lambda: all(r["state"] in TERMINAL_STATES for r in client.runs(MONITOR_DAG, 5))  # noqa: E731
    wait_until(idle, timeout, f"{MONITOR_DAG} runs to finish", poll=0.2)


# Every figure wrk prints at the end, as one JSON line (latencies in microseconds).
WRK_REPORT = """done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests": %d, "duration_us": %d, "errors": %d, '
    .. '"p50": %d, "p90": %d, "p99": %d, "max": %d}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max))
end"""
WRK_POST = """local body = io.open("{path}", "rb")
wrk.method, wrk.body = "POST", body:read("*a")
body:close()
wrk.headers["Content-Type"] = "application/json"
"""


def pin_wrk() -> None:  # subprocess preexec_fn
    """wrk on the last CPU this process may use: it takes at most one core from the service."""
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


@dataclass
class Wrk:
    threads: int
    connections: int
    duration: float
    binary: str = field(default_factory=lambda: ensure_debian_tool("wrk", "wrk"))

    def command(self, url: str, duration: float) -> list[str]:
        options = f"-t{self.threads} -c{self.connections} -d{duration:g}s --timeout 10s"
        return [self.binary, *options.split(), url]

    def run(self, url: str, duration: float | None = None, post: bytes | None = None) -> dict:
        """One pinned run on ``url`` (each request a POST of ``post`` if given): its figures."""
        duration = duration or self.duration
        with tempfile.TemporaryDirectory() as tmp:
            script, body = Path(tmp, "report.lua"), Path(tmp, "body.json")
            if post is not None:
                body.write_bytes(post)
            script.write_text(("" if post is None else WRK_POST.format(path=body)) + WRK_REPORT)
            command = [*self.command(url, duration), "-s", str(script)]
            limit = duration + 60
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=limit, preexec_fn=pin_wrk
            )
        lines = [line for line in done.stdout.splitlines() if line.startswith("WRK_JSON ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
        raw = json.loads(lines[-1].removeprefix("WRK_JSON "))
        seconds, rps = raw["duration_us"] / 1e6, raw["requests"] * 1e6 / raw["duration_us"]
        latency = {f"{k}_ms": raw[k] / 1000 for k in ("p50", "p90", "p99", "max")}
        return {"duration_s": seconds, "requests_per_s": rps, "errors": raw["errors"], **latency}


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


class Sampler(threading.Thread):
    """``read()`` every ``interval`` s until ``stop()``: each new answer, when asked and got."""

    def __init__(self, read: Callable[[], object], interval: float) -> None:
        super().__init__(daemon=True)
        self.read, self.interval, self.seen, self.done = read, interval, [], threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            asked = time.time()
            try:
                answer = self.read()
            except Exception:
                continue
            if not self.seen or self.seen[-1][2] != answer:
                self.seen.append((asked, time.time(), answer))

    def stop(self) -> None:
        self.done.set()
        self.join()


def spread(values: Iterable[float | None], digits: int = 3) -> dict:
    """n, median, p90, min and max of the measured values; ``missed`` counts the Nones."""
    values = list(values)
    measured = sorted(v for v in values if v is not None)
    if not measured:
        return {"n": 0, "missed": len(values)}
    p90 = measured[min(len(measured) - 1, round(0.9 * (len(measured) - 1)))]
    stats = {
        "median": statistics.median(measured),
        "p90": p90,
        "min": measured[0],
        "max": measured[-1],
    }
    counts = {"n": len(measured), "missed": len(values) - len(measured)}
    return counts | {k: round(v, digits) for k, v in stats.items()}


def cell(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(header: str | Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; a ``header`` string is its header row ("a | b")."""
    header = header.split(" | ") if isinstance(header, str) else header
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


@dataclass
class Target:
    goal: str
    measured: str
    met: bool


@dataclass
class Report:
    """One result: ``sections`` are Markdown blocks, ``figures`` what they are drawn from."""

    name: str
    title: str
    method: str
    targets: list[Target] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)


def publish(
    report: Report, results: Path = RESULTS, samples: object = None, measured_on: dict | None = None
) -> None:
    """``<name>.md`` (keeping its notes), ``<name>.json`` and any ``<name>.samples.json``."""
    results.mkdir(parents=True, exist_ok=True)
    on = measured_on or {  # a redrawn result keeps the machine it was measured on
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    markdown = results / f"{report.name}.md"
    parts = [f"# {report.title}", report.method]
    if report.targets:
        rows = [(t.goal, t.measured, "yes" if t.met else "**no**") for t in report.targets]
        parts.append(table(("target", "measured", "met"), rows))
    parts += report.sections
    parts.append(
        f"Measured {on['measured_at']} on {on['cpus']} CPUs, load average "
        f"{on['load_average_1m']} at the end (`{report.name}.json`)."
    )
    old = markdown.read_text() if markdown.exists() else ""
    if NOTES in old:
        parts.append(NOTES + old.split(NOTES, 1)[1].rstrip())
    figures = {"machine": on, "targets": [vars(t) for t in report.targets], **report.figures}
    (results / f"{report.name}.json").write_text(json.dumps(figures, indent=1) + "\n")
    if samples is not None:
        (results / f"{report.name}.samples.json").write_text(json.dumps(samples))
    markdown.write_text("\n\n".join(parts).rstrip() + "\n")
    for t in report.targets:
        print(f"{'met' if t.met else 'NOT met'}: {t.goal}: {t.measured}")


class Arguments(argparse.ArgumentParser):
    """``--results`` and ``--rebuild``, which redraws ``reports`` from their JSON and exits."""

    def __init__(self, doc: str, reports: dict[str, Callable[[dict], Report]]) -> None:
        super().__init__(description=doc.splitlines()[0])
        self.reports = reports
        self.add_argument("--results", type=Path, default=RESULTS, help="where to write")
        self.add_argument("--rebuild", action="store_true", help="redraw from the published JSON")

    def parse_args(self, argv: Sequence[str] | None = None) -> argparse.Namespace:  # type: ignore[override]
        args = super().parse_args(argv)
        for name, report in self.reports.items() if args.rebuild else ():
            if (path := args.results / f"{name}.json").exists():
                figures = json.loads(path.read_text())
                on, _ = figures.pop("machine"), figures.pop("targets")
                publish(report(figures), args.results, measured_on=on)
        if args.rebuild:
            raise SystemExit(0)
        return args
