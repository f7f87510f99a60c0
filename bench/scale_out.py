"""Scale-out: a grid of candidates fitted by one Celery worker against two (concurrency 1
each), on the Compose stack; leaves it with one worker of the configured concurrency.

    scripts/e2e-docker .venv/bin/python bench/scale_out.py [--rows 1000000] [--candidates 8]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import harness
from harness import Report, Target, cell, spread, table

from adclick_airflow.settings import TRAINING_DAG_ID
from testkit.advertising import write_csv
from testkit.compose import ComposeStack, project_containers
from testkit.runs import unsuccessful
from testkit.scaleout import grid, host_of, hostname, instances, scale_workers

TARGET_SPEEDUP, RUN_TIMEOUT_S = 1.6, 3600.0
MACHINE, IOWAIT = "(machine busy)", "(machine iowait)"
CORES = ("workers", "rest", "machine_busy", "machine_iowait")


def cpu_now(pids: dict[str, int]) -> dict[str, float | None]:
    """Each container's cgroup CPU seconds, and the machine's busy and I/O-wait seconds."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, iowait, irq, softirq, steal = fields[:8]
    busy, tick = user + nice + system + irq + softirq + steal, os.sysconf("SC_CLK_TCK")
    containers = {name: harness.cpu_seconds(pid) for name, pid in pids.items()}
    return containers | {MACHINE: busy / tick, IOWAIT: iowait / tick}


def measure(stack: ComposeStack, workers: int, conf: dict) -> dict:
    """One training run with ``workers`` workers of concurrency 1: its figures."""
    hosts = {hostname(c) for c in scale_workers(stack, workers, concurrency=1)}
    client = stack.api("admin", timeout=60)
    harness.wait_until_monitor_idle(client, timeout=600)  # its tasks would share the slots
    pids = {c["Name"].lstrip("/"): c["State"]["Pid"] for c in project_containers(stack.project)}
    sampler = harness.Sampler(lambda: cpu_now(pids), 0.25)
    run_id = client.trigger(TRAINING_DAG_ID, conf)["dag_run_id"]
    try:
        run = client.wait_for_run(TRAINING_DAG_ID, run_id, timeout=RUN_TIMEOUT_S, poll=2)
        time.sleep(2 * sampler.interval)  # a sample after the stage's end
    finally:
        sampler.stop()
    if run["state"] != "success":
        raise SystemExit(f"{run_id}: {unsuccessful(client, TRAINING_DAG_ID, run_id)}")
    fits = instances(client, TRAINING_DAG_ID, run_id, "build_model")
    started = min(datetime.fromisoformat(t["start_date"]).timestamp() for t in fits)
    ended = max(datetime.fromisoformat(t["end_date"]).timestamp() for t in fits)
    first = max((s for s in sampler.seen if s[0] <= started), key=lambda s: s[0])[2]
    last = min((s for s in sampler.seen if s[0] >= ended), key=lambda s: s[0])[2]
    cpu = {k: last[k] - first[k] for k in first if None not in (first[k], last[k])}
    grid_s, busy, iowait = ended - started, cpu.pop(MACHINE), cpu.pop(IOWAIT)
    worker_cpu = sum(v for name, v in cpu.items() if "airflow-worker" in name)
    run_s = datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
    return {
        "workers": workers,
        "grid_s": grid_s,
        "run_s": run_s.total_seconds(),
        "hosts_used": len({host_of(t) for t in fits} & hosts),
        "fit_s": spread(t["duration"] for t in fits)["median"],
        # CPU over the stage, in cores: what the workers had, what the rest of the stack and
        # what no container is charged for (the engine, the kernel's network work) took.
        "cores_workers": worker_cpu / grid_s,
        "cores_rest": (sum(cpu.values()) - worker_cpu) / grid_s,
        "cores_machine_busy": busy / grid_s,
        "cores_machine_iowait": iowait / grid_s,
    }


def report(f: dict) -> Report:
    one, two = f["workers"]["1"], f["workers"]["2"]
    speedup = one["grid_s"]["median"] / two["grid_s"]["median"]
    figures = ("run_s", "fit_s", *(f"cores_{k}" for k in CORES))
    grid = lambda x: (x["grid_s"]["n"], *(cell(x["grid_s"][k]) for k in ("median", "min", "max")))  # noqa: E731
    rows = [
        (n, x["hosts_used"], *grid(x), *(cell(x[k]) for k in figures))
        for n, x in f["workers"].items()
    ]
    header = "workers | hosts used | runs | grid s | min | max | run s | median fit s | "
    header += "workers' CPU | rest of the stack's CPU | machine busy | machine iowait"
    whole = f"{one['run_s']:.1f} s vs {two['run_s']:.1f} s: {one['run_s'] / two['run_s']:.2f}x"
    method = (
        f"{f['rows']:,} rows, {f['candidates']} candidates, each worker with concurrency 1, runs "
        "alternating between one worker and two after a warm-up run, in one session on the "
        "Compose stack. `grid` is first candidate started to last done (medians); CPU in cores "
        "over the `build_model` stage: the containers' cgroups and the machine's `/proc/stat`."
    )
    measured = f"{one['grid_s']['median']:.1f} s vs {two['grid_s']['median']:.1f} s: {speedup:.2f}x"
    goal = f"build_model stage, 2 workers >= {TARGET_SPEEDUP}x faster than 1"
    target = Target(goal, f"{measured} (whole run {whole})", speedup >= TARGET_SPEEDUP)
    title = "Scale-out: a candidate grid on one worker vs two"
    return Report("scale_out", title, method, [target], [table(header, rows)], f)


def main(argv: list[str] | None = None) -> int:
    parser = harness.Arguments(__doc__, {"scale_out": report})
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--runs", type=int, default=2, help="runs per worker count")
    args = parser.parse_args(argv)
    stack = harness.compose_stack()
    with tempfile.TemporaryDirectory() as tmp:
        csv = write_csv(Path(tmp) / f"advertising_{args.rows}.csv", rows=args.rows, seed=11)
        conf = {"data_path": stack.upload_data(csv), "candidates": grid(args.candidates)}
    samples: list[dict] = []
    try:
        # Not counted: the first run after start-up pays for cold caches (the worker's first
        # tasks, the store's first reads of the dataset).
        measure(stack, 1, conf)
        for _ in range(args.runs):
            samples += [measure(stack, workers, conf) for workers in (1, 2)]
    finally:
        scale_workers(stack, 1)
    by_count = {}
    for n in (1, 2):  # medians over each worker count's runs; grid_s: its spread
        runs = [s for s in samples if s["workers"] == n]
        by_count[str(n)] = {k: spread(r[k] for r in runs).get("median") for k in runs[0]}
        by_count[str(n)]["grid_s"] = spread(r["grid_s"] for r in runs)
    figures = {"rows": args.rows, "candidates": args.candidates, "workers": by_count}
    harness.publish(report(figures), args.results, samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
