"""Pipeline latency: trigger -> success of the training DAG against a do-nothing control DAG.

    .venv/bin/python bench/pipeline_latency.py [--runs 11]     # embedded stack
    bench/celery-stack                                          # Celery (Compose) stack

Triggers each DAG once to warm up, then alternates ML and control runs through REST API v2,
each after the monitor run the previous training run started has finished.
Reports medians, p90 and the ML/control ratio against the targets below, and the per-task
timeline of both DAGs (bench/task_timeline.py: where each task's time goes, and where the ML
DAG spends more than the control), in bench/results/pipeline_latency[_celery].{md,json}.
The embedded stack is booted here with the shipped settings; the Celery stack is the one
scripts/e2e-docker brings up (with bench/compose.bench.yaml adding the control DAG), found
through its E2E_* variables.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime

import task_timeline
from harness import (
    BENCH_DAGS,
    Report,
    Target,
    arguments,
    compose_stack_client,
    embedded_stack,
    publish,
    table,
    wait_until_monitor_idle,
)

from adclick_airflow.settings import TRAINING_DAG_ID as ML_DAG

CONTROL_DAG = "ad_click_control"
RATIO_TARGET = 1.15
# A loaded shared machine can keep the api-server from answering for many seconds; the
# benchmark measures run times, not the API's.
SLOW_CALL_S = 60.0
# Per stack: the training DAG's median (s) and, for Celery, p90 as a multiple of the median.
MEDIAN_TARGET_S = {"embedded": 3.0, "celery": 4.0}
P90_OVER_MEDIAN_TARGET = {"celery": 1.3}
HEARTBEAT = re.compile(r"duration_us=(\d+).*path=/execution/task-instances/[\w-]+/heartbeat")


def timed_run(client, dag_id: str) -> dict:
    """Wall time from the trigger request to the first poll that sees success (20 ms polls).

    A poll the api-server does not answer in time is repeated: on a loaded machine it can
    stall for a while, and the run's own timestamps (``server_s``) are unaffected."""
    from airflow_rest import AirflowUnreachable

    started = time.perf_counter()
    run = client.trigger(dag_id, {})
    while True:
        try:
            current = client.get_run(dag_id, run["dag_run_id"])
        except AirflowUnreachable:
            continue
        if current["state"] in ("success", "failed"):
            break
        time.sleep(0.02)
    wall = time.perf_counter() - started
    if current["state"] != "success":
        raise RuntimeError(f"{dag_id} run {run['dag_run_id']} ended {current['state']}")
    server = (
        datetime.fromisoformat(current["end_date"]) - datetime.fromisoformat(current["queued_at"])
    ).total_seconds()
    return {"run_id": run["dag_run_id"], "wall_s": round(wall, 3), "server_s": round(server, 3)}


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
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--stack", choices=("embedded", "celery"), default="embedded")
    args = parser.parse_args(argv)
    from airflow_rest import AirflowClient

    if args.stack == "celery":
        client = compose_stack_client(timeout=SLOW_CALL_S)
        samples = measure(client, args.runs)
        executor_log, api_log = compose_logs("airflow-worker"), compose_logs("airflow-apiserver")
        timelines = timelines_of(client, samples, executor_log)
    else:
        with embedded_stack(extra_dags=[BENCH_DAGS / "ad_click_control.py"]) as stack:
            client = AirflowClient(
                stack.api_url, stack.admin.username, stack.admin.password, timeout=SLOW_CALL_S
            )
            samples = measure(client, args.runs)
            executor_log = (stack.log_dir / "scheduler.log").read_text(errors="replace")
            api_log = (stack.log_dir / "api-server.log").read_text(errors="replace")
            timelines = timelines_of(client, samples, executor_log)
    report = summarize(samples, args.stack)
    report["timeline"] = timelines
    report["heartbeats"] = heartbeat_cost(api_log)
    publish(latency_report(report), args.results)
    return 0


def compose_logs(service: str) -> str:
    """The whole log of one service of the Compose stack under test."""
    command = json.loads(os.environ["E2E_COMPOSE"])
    return subprocess.run(
        [*command, "logs", "--no-color", "--no-log-prefix", service],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def timelines_of(client, samples: dict[str, list[dict]], executor_log: str) -> dict:
    """The median per-task timeline of each DAG, and where the ML DAG spends more."""
    done = task_timeline.supervisor_done_times(executor_log)
    medians = {
        dag_id: task_timeline.median_timeline(
            [task_timeline.run_timeline(client, dag_id, s["run_id"], done) for s in runs]
        )
        for dag_id, runs in samples.items()
    }
    return {**medians, "ml_minus_control": task_timeline.difference(*medians.values())}


def heartbeat_cost(api_log: str) -> dict:
    """What task heartbeats cost the api-server: each is one request and one row update."""
    durations = [int(m[1]) / 1000 for m in HEARTBEAT.finditer(api_log)]
    median_ms = round(statistics.median(durations), 2) if durations else None
    return {"count": len(durations), "median_ms": median_ms}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarize(samples: dict[str, list[dict]], stack: str) -> dict:
    walls = {dag_id: [s["wall_s"] for s in runs] for dag_id, runs in samples.items()}
    medians = {dag_id: statistics.median(w) for dag_id, w in walls.items()}
    ratio = medians[ML_DAG] / medians[CONTROL_DAG]
    p90 = percentile(walls[ML_DAG], 0.9)
    p90_target = P90_OVER_MEDIAN_TARGET.get(stack)
    return {
        "samples": samples,
        "summary": {
            "stack": stack,
            "runs_per_dag": len(samples[ML_DAG]),
            "ml_median_s": round(medians[ML_DAG], 3),
            "ml_p90_s": round(p90, 3),
            "ml_p90_over_median": round(p90 / medians[ML_DAG], 3),
            "control_median_s": round(medians[CONTROL_DAG], 3),
            "control_p90_s": round(percentile(walls[CONTROL_DAG], 0.9), 3),
            "ml_over_control": round(ratio, 3),
            "ratio_target": RATIO_TARGET,
            "ml_median_target_s": MEDIAN_TARGET_S[stack],
            "p90_over_median_target": p90_target,
            "meets_ratio": ratio <= RATIO_TARGET,
            "meets_median": medians[ML_DAG] <= MEDIAN_TARGET_S[stack],
            "meets_p90": None if p90_target is None else p90 <= p90_target * medians[ML_DAG],
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
    }


TITLES = {
    "embedded": ("pipeline_latency", "embedded stack: SQLite + LocalExecutor"),
    "celery": ("pipeline_latency_celery", "Compose stack: Postgres + Redis + CeleryExecutor"),
}


def latency_report(report: dict) -> Report:
    s = report["summary"]
    name, title = TITLES[s["stack"]]
    timeline = report["timeline"]
    extra = timeline["ml_minus_control"]
    beats = report["heartbeats"]
    p90_target = s["p90_over_median_target"]
    targets = [
        Target(
            f"training median <= {s['ml_median_target_s']:.1f} s",
            f"{s['ml_median_s']:.2f} s",
            s["meets_median"],
        ),
        Target(
            f"training <= {s['ratio_target']}x the control (medians)",
            f"{s['ml_median_s']:.2f} s vs {s['control_median_s']:.2f} s = "
            f"{s['ml_over_control']:.3f}x",
            s["meets_ratio"],
        ),
    ]
    if p90_target:
        targets.append(
            Target(
                f"training p90 <= {p90_target}x its median",
                f"{s['ml_p90_s']:.2f} s = {s['ml_p90_over_median']:.2f}x",
                s["meets_p90"],
            )
        )
    figures = table(
        ("", "median (s)", "p90 (s)"),
        [
            (ML_DAG, f"{s['ml_median_s']:.2f}", f"{s['ml_p90_s']:.2f}"),
            (
                f"{CONTROL_DAG} (baseline)",
                f"{s['control_median_s']:.2f}",
                f"{s['control_p90_s']:.2f}",
            ),
        ],
    )
    where = (
        "## Where the time goes\n\n"
        + task_timeline.__doc__.split("\n\n", 1)[1].strip()
        + "\n\n"
        + task_timeline.markdown(ML_DAG, timeline[ML_DAG])
        + "\n"
        + task_timeline.markdown(CONTROL_DAG, timeline[CONTROL_DAG])
        + "\nTraining minus control, summed over the chain (s): "
        + ", ".join(f"{k} {v:+.2f}" for k, v in extra.items())
        + f".\n\nTask heartbeats seen by the api-server: {beats['count']}, median "
        f"{beats['median_ms']} ms each (one request and one row update per running task per "
        "`[workers] min_heartbeat_interval`)."
    )
    runs = table(
        ("DAG", "run", "trigger->success seen by client (s)", "queued->end in Airflow (s)"),
        (
            (dag_id, i + 1, f"{r['wall_s']:.2f}", f"{r['server_s']:.2f}")
            for dag_id, samples in report["samples"].items()
            for i, r in enumerate(samples)
        ),
    )
    return Report(
        name=name,
        title=f"Pipeline latency ({title})",
        method=(
            f"Trigger -> success of {s['runs_per_dag']} runs of each DAG after one warm-up run "
            "each, alternating, against a control DAG of the same shape and XCom traffic that "
            "does no work."
        ),
        targets=targets,
        sections=[figures, where, "## Runs\n\n" + runs],
        data=report,
    )


if __name__ == "__main__":
    sys.exit(main())
