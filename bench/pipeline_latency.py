"""Pipeline latency: trigger -> success of the training DAG against a do-nothing control DAG.

    .venv/bin/python bench/pipeline_latency.py [--runs 11]     # embedded stack
    bench/celery-stack                                          # Celery (Compose) stack

Triggers each DAG once to warm up, then alternates ML and control runs through REST API v2,
each after the monitor run the previous training run started has finished.
Reports medians and the ML/control ratio (target <= 1.15), and for the embedded stack the
absolute median (target <= 6 s), in bench/results/pipeline_latency[_celery].{md,json}.
The embedded stack is booted here with the shipped settings; the Celery stack is the one
scripts/e2e-docker brings up (with bench/compose.bench.yaml adding the control DAG), found
through its E2E_* variables.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime

from harness import (
    BENCH_DAGS,
    compose_stack_client,
    embedded_stack,
    wait_until_monitor_idle,
    write_results,
)

ML_DAG, CONTROL_DAG = "ad_click_training", "ad_click_control"


def timed_run(client, dag_id: str) -> dict:
    """Wall time from the trigger request to the first poll that sees success (10 ms polls)."""
    started = time.perf_counter()
    run = client.trigger(dag_id, {})
    while True:
        current = client.get_run(dag_id, run["dag_run_id"])
        if current["state"] in ("success", "failed"):
            break
        time.sleep(0.01)
    wall = time.perf_counter() - started
    if current["state"] != "success":
        raise RuntimeError(f"{dag_id} run {run['dag_run_id']} ended {current['state']}")
    server = (
        datetime.fromisoformat(current["end_date"]) - datetime.fromisoformat(current["queued_at"])
    ).total_seconds()
    return {"wall_s": round(wall, 3), "server_s": round(server, 3)}


def measure(client, runs: int) -> dict[str, list[dict]]:
    deadline = time.monotonic() + 180
    while not all(client.dag_exists(d) for d in (ML_DAG, CONTROL_DAG)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{ML_DAG} and {CONTROL_DAG} not both parsed after 180 s")
        time.sleep(0.5)
    for dag_id in (ML_DAG, CONTROL_DAG):  # warm-up: cold imports, first parse
        client.set_paused(dag_id, False)
        timed_run(client, dag_id)
        wait_until_monitor_idle(client)
    samples: dict[str, list[dict]] = {ML_DAG: [], CONTROL_DAG: []}
    for _ in range(runs):
        for dag_id in (ML_DAG, CONTROL_DAG):
            samples[dag_id].append(timed_run(client, dag_id))
            wait_until_monitor_idle(client)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--stack", choices=("embedded", "celery"), default="embedded")
    args = parser.parse_args(argv)
    if args.stack == "celery":
        samples = measure(compose_stack_client(), args.runs)
    else:
        with embedded_stack(extra_dags=[BENCH_DAGS / "ad_click_control.py"]) as stack:
            samples = measure(stack.client(), args.runs)
    report = summarize(samples, args.stack)
    write_report(report)
    print(json.dumps(report["summary"], indent=2))
    return 0


def summarize(samples: dict[str, list[dict]], stack: str) -> dict:
    medians = {
        dag_id: {k: statistics.median(s[k] for s in runs) for k in ("wall_s", "server_s")}
        for dag_id, runs in samples.items()
    }
    ratio = medians[ML_DAG]["wall_s"] / medians[CONTROL_DAG]["wall_s"]
    return {
        "samples": samples,
        "summary": {
            "stack": stack,
            "runs_per_dag": len(samples[ML_DAG]),
            "ml_median_s": round(medians[ML_DAG]["wall_s"], 3),
            "control_median_s": round(medians[CONTROL_DAG]["wall_s"], 3),
            "ml_over_control": round(ratio, 3),
            "ratio_target": 1.15,
            "ml_median_target_s": 6.0,
            "meets_ratio": ratio <= 1.15,
            "meets_absolute": medians[ML_DAG]["wall_s"] <= 6.0,
        },
    }


TITLES = {
    "embedded": ("pipeline_latency", "embedded stack: SQLite + LocalExecutor"),
    "celery": ("pipeline_latency_celery", "Compose stack: Postgres + Redis + CeleryExecutor"),
}


def write_report(report: dict) -> None:
    s = report["summary"]
    name, title = TITLES[s["stack"]]
    absolute = "<= 6.0 s" if s["stack"] == "embedded" else "(embedded stack only)"
    rows = "\n".join(
        f"| {dag_id} | {i + 1} | {r['wall_s']:.2f} | {r['server_s']:.2f} |"
        for dag_id, runs in report["samples"].items()
        for i, r in enumerate(runs)
    )
    write_results(
        name,
        report,
        f"# Pipeline latency ({title})\n\n"
        f"Trigger -> success, median of {s['runs_per_dag']} runs after one warm-up run each.\n\n"
        "| | median (s) | target |\n| --- | --- | --- |\n"
        f"| ad_click_training | {s['ml_median_s']:.2f} | {absolute} |\n"
        f"| ad_click_control (baseline) | {s['control_median_s']:.2f} | |\n"
        f"| ratio ML / control | {s['ml_over_control']:.3f} | <= 1.15 |\n\n"
        "| DAG | run | trigger->success seen by client (s) | queued->end in Airflow (s) |\n"
        f"| --- | --- | --- | --- |\n{rows}\n",
    )


if __name__ == "__main__":
    sys.exit(main())
