"""Scale-out: a grid of candidates fitted by one Celery worker against two, on the Compose stack.

    scripts/e2e-docker .venv/bin/python bench/scale_out.py [--rows 1000000] [--candidates 8]

Each worker runs with concurrency 1, so the figure shows tasks spreading over workers rather
than more processes on one. The same dataset and grid are trained with one worker, then two
(``--runs`` times each, alternating, after one uncounted warm-up run), in the same run of
this script. The figure is the ``build_model`` stage (first candidate started to last
candidate done), where the grid's work is; the whole run's duration is reported beside it,
and, over the stage, the CPU every container used (its cgroup) and the whole machine's busy
and I/O-wait time (``/proc/stat``), sampled every 0.25 s: what the workers had, what the rest
of the stack and the engine took from the same cores; and each candidate task's timeline
(bench/task_timeline.py).
Target: two workers >= 1.6x faster. Results in bench/results/scale_out.{md,json}. Leaves the
stack with one worker of the configured concurrency.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import task_timeline
from harness import (
    Report,
    Target,
    arguments,
    cpu_seconds,
    publish,
    spread,
    table,
    wait_until_monitor_idle,
)

from adclick_airflow.settings import TRAINING_DAG_ID
from testkit.advertising import write_csv
from testkit.compose import ComposeStack, project_containers
from testkit.runs import unsuccessful
from testkit.scaleout import grid, host_of, hostname, instances, scale_workers

TARGET_SPEEDUP = 1.6
# Where a candidate task's time goes (bench/task_timeline.py), beside the stage's CPU.
FIT_SEGMENTS = ("queued", "pickup", "startup", "body", "finish")


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


MACHINE, IOWAIT = "(machine busy)", "(machine iowait)"


def machine_seconds() -> dict[str, float]:
    """The whole machine's busy and I/O-wait CPU seconds so far (/proc/stat): what no
    container is charged for (the engine, interrupts, the kernel's network work) shows here."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, iowait, irq, softirq, steal = fields[:8]
    return {MACHINE: (user + nice + system + irq + softirq + steal) / tick, IOWAIT: iowait / tick}


class CpuSampler(threading.Thread):
    """Every container's cgroup CPU seconds, every ``interval`` s, with wall-clock times."""

    def __init__(self, project: str, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pids = {c["Name"].lstrip("/"): c["State"]["Pid"] for c in project_containers(project)}
        self.interval, self.samples, self.done = interval, [], threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            cpu = {n: cpu_seconds(p) for n, p in self.pids.items()} | machine_seconds()
            self.samples.append((time.time(), cpu))
            self.done.wait(self.interval)

    def between(self, start: datetime, end: datetime) -> dict[str, float]:
        """CPU seconds per container from the sample before ``start`` to the one after ``end``."""
        first = max((s for s in self.samples if s[0] <= start.timestamp()), key=lambda s: s[0])
        last = min((s for s in self.samples if s[0] >= end.timestamp()), key=lambda s: s[0])
        return {
            name: round(last[1][name] - first[1][name], 2)
            for name in [*self.pids, MACHINE, IOWAIT]
            if last[1][name] is not None and first[1][name] is not None
        }


def measure(stack: ComposeStack, workers: int, conf: dict, timeout: float) -> dict:
    """One training run with ``workers`` workers of concurrency 1."""
    containers = scale_workers(stack, workers, concurrency=1)
    hosts = {hostname(c) for c in containers}
    client = stack.api("admin", timeout=60)
    wait_until_monitor_idle(client, timeout=600)  # the last run's monitor tasks share the slots
    sampler = CpuSampler(stack.project)
    sampler.start()
    run_id = client.trigger(TRAINING_DAG_ID, conf)["dag_run_id"]
    try:
        run = client.wait_for_run(TRAINING_DAG_ID, run_id, timeout=timeout, poll=2)
        time.sleep(2 * sampler.interval)  # a sample after the stage's end
    finally:
        sampler.done.set()
        sampler.join()
    if run["state"] != "success":
        raise SystemExit(
            f"{run_id}: {run['state']}:\n{unsuccessful(client, TRAINING_DAG_ID, run_id)}"
        )
    fits = instances(client, TRAINING_DAG_ID, run_id, "build_model")
    started = min(_ts(t["start_date"]) for t in fits)
    ended = max(_ts(t["end_date"]) for t in fits)
    cpu = sampler.between(started, ended)
    machine = {"busy": cpu.pop(MACHINE), "iowait": cpu.pop(IOWAIT)}
    timeline = task_timeline.run_timeline(client, TRAINING_DAG_ID, run_id)
    fit_segments = {
        segment: spread(
            t[segment] for t in timeline["tasks"] if t["task_id"].startswith("build_model[")
        )
        for segment in FIT_SEGMENTS
    }
    worker_cpu = sum(v for name, v in cpu.items() if "airflow-worker" in name)
    return {
        "workers": workers,
        "run_id": run_id,
        "grid_s": round((ended - started).total_seconds(), 2),
        "run_s": round((_ts(run["end_date"]) - _ts(run["start_date"])).total_seconds(), 2),
        "hosts_used": len({host_of(t) for t in fits} & hosts),
        "fit_s": spread(t["duration"] for t in fits),
        "grid_cpu_s": {
            "workers": round(worker_cpu, 2),
            "rest": round(sum(cpu.values()) - worker_cpu, 2),
        },
        "grid_cpu_by_container_s": cpu,
        "grid_machine_cpu_s": machine,
        "fit_segments_s": fit_segments,
    }


def main() -> None:
    parser = arguments(__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--runs", type=int, default=2, help="runs per worker count")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    stack = ComposeStack.from_env()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / f"advertising_{args.rows}.csv"
        write_csv(csv, rows=args.rows, seed=11)
        conf = {"data_path": stack.upload_data(csv), "candidates": grid(args.candidates)}
    samples: list[dict] = []
    try:
        # Not counted: the first run after start-up pays for cold caches (the worker's first
        # tasks, the store's first reads of the dataset).
        print("warm-up:", measure(stack, 1, conf, args.timeout), flush=True)
        for _ in range(args.runs):
            for workers in (1, 2):
                samples.append(measure(stack, workers, conf, args.timeout))
                print(samples[-1], flush=True)
    finally:
        scale_workers(stack, 1)
    by = {n: [s for s in samples if s["workers"] == n] for n in (1, 2)}
    grid_s = {n: statistics.median(s["grid_s"] for s in by[n]) for n in by}
    run_s = {n: statistics.median(s["run_s"] for s in by[n]) for n in by}
    speedup = grid_s[1] / grid_s[2]
    rows = [
        (
            s["workers"],
            s["grid_s"],
            s["run_s"],
            s["hosts_used"],
            s["fit_s"].get("median"),
            f"{s['grid_cpu_s']['workers'] / s['grid_s']:.2f}",
            f"{s['grid_cpu_s']['rest'] / s['grid_s']:.2f}",
            f"{s['grid_machine_cpu_s']['busy'] / s['grid_s']:.2f}",
            f"{s['grid_machine_cpu_s']['iowait'] / s['grid_s']:.2f}",
        )
        for s in samples
    ]
    segment_rows = [
        (
            n,
            *(
                spread(x["fit_segments_s"][seg].get("median") for x in by[n]).get("median", "-")
                for seg in FIT_SEGMENTS
            ),
        )
        for n in by
    ]
    header = ("workers", "grid s", "run s", "hosts used", "median fit s")
    header += ("workers' CPU (cores)", "rest of the stack's CPU (cores)")
    header += ("machine busy (cores)", "machine iowait (cores)")
    publish(
        Report(
            name="scale_out",
            title="Scale-out: a candidate grid on one worker vs two",
            method=(
                f"{args.rows:,} rows, {args.candidates} candidates, each worker with "
                f"concurrency 1, {args.runs} run(s) per worker count, alternating after a "
                "warm-up run, in one session on the Compose stack. `grid` is first candidate "
                "started to last done."
            ),
            targets=[
                Target(
                    f"build_model stage, 2 workers >= {TARGET_SPEEDUP}x faster than 1",
                    f"{grid_s[1]:.1f} s vs {grid_s[2]:.1f} s: {speedup:.2f}x "
                    f"(whole run {run_s[1]:.1f} s vs {run_s[2]:.1f} s: "
                    f"{run_s[1] / run_s[2]:.2f}x)",
                    speedup >= TARGET_SPEEDUP,
                )
            ],
            sections=[
                table(header, rows),
                "CPU in cores: the containers' cgroup CPU time over the `build_model` stage, "
                "divided by its length (the machine has "
                f"{os.cpu_count()}). What the rest of the stack takes during the stage is what "
                "a second worker on the same cores cannot have.",
                "A candidate task's time by segment (bench/task_timeline.py; median over the "
                "candidates of a run, then over the runs), s:\n\n"
                + table(("workers", *FIT_SEGMENTS), segment_rows),
            ],
            data={"rows": args.rows, "candidates": args.candidates, "samples": samples},
        ),
        args.results,
    )


if __name__ == "__main__":
    main()
