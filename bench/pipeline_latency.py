"""Pipeline latency: trigger -> success of the training DAG against a do-nothing control DAG.

    .venv/bin/python bench/pipeline_latency.py [--runs 11]     # embedded stack
    bench/celery-stack                                          # Celery (Compose) stack

After one warm-up run of each, alternates training and control runs through REST API v2, each
after the monitor run the previous training run started has finished: medians, p90 and their
ratio against the targets below, and both DAGs' per-task timelines (bench/task_timeline.py:
where the training DAG spends more than the control), in
bench/results/pipeline_latency[_celery].{md,json}. The embedded stack is booted here with the
shipped settings; the Celery stack is the one scripts/e2e-docker brings up (with
bench/compose.bench.yaml adding the control DAG), found through its E2E_* variables.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from functools import partial

import task_timeline
from harness import (
    BENCH_DAGS,
    SLOW_CALL_S,
    Report,
    Target,
    alternating,
    arguments,
    compose_stack_client,
    embedded_stack,
    patient_client,
    publish,
    settled_run,
    spread,
    table,
)

from adclick_airflow.settings import TRAINING_DAG_ID as ML_DAG
from airflow_rest import AirflowClient
from embedded.stack import EmbeddedStack
from testkit.waiting import wait_until

CONTROL_DAG = "ad_click_control"
RATIO_TARGET = 1.15
# Per stack: the training DAG's median (s) and, for Celery, p90 as a multiple of the median.
MEDIAN_TARGET_S = {"embedded": 3.0, "celery": 4.0}
P90_OVER_MEDIAN_TARGET = {"celery": 1.3}
HEARTBEAT = re.compile(r"duration_us=(\d+).*path=/execution/task-instances/[\w-]+/heartbeat")
REPORTS = {  # stack -> report name, title
    "embedded": ("pipeline_latency", "embedded stack: SQLite + LocalExecutor"),
    "celery": ("pipeline_latency_celery", "Compose stack: Postgres + Redis + CeleryExecutor"),
}


def measure(client: AirflowClient, runs: int, logs: Callable[[], tuple[str, str]]) -> dict:
    """``timed_run`` samples of each DAG, alternating, after one warm-up run of each; then, from
    ``logs()`` (the executor's and the api-server's), the timelines and the heartbeats."""
    dags = (ML_DAG, CONTROL_DAG)
    parsed = f"{ML_DAG} and {CONTROL_DAG} to be parsed"
    wait_until(lambda: all(map(client.dag_exists, dags)), 180, parsed, poll=0.5)
    for dag_id in dags:
        client.set_paused(dag_id, False)
    samples = alternating({dag_id: partial(settled_run, client, dag_id) for dag_id in dags}, runs)
    executor_log, api_log = logs()
    timeline = timelines_of(client, samples, executor_log)
    return {"samples": samples, "timeline": timeline, "heartbeats": heartbeat_cost(api_log)}


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--stack", choices=("embedded", "celery"), default="embedded")
    args = parser.parse_args(argv)
    if args.stack == "celery":
        measured = measure(compose_stack_client(timeout=SLOW_CALL_S), args.runs, compose_logs)
    else:
        with embedded_stack(extra_dags=[BENCH_DAGS / "ad_click_control.py"]) as stack:
            measured = measure(patient_client(stack), args.runs, lambda: embedded_logs(stack))
    report = {**summarize(measured["samples"], args.stack), **measured}
    publish(latency_report(report), args.results)
    return 0


def embedded_logs(stack: EmbeddedStack) -> tuple[str, str]:
    """The whole logs of the embedded stack's scheduler (its LocalExecutor) and api-server."""
    logs = (stack.log_dir / f"{c}.log" for c in ("scheduler", "api-server"))
    return tuple(log.read_text(errors="replace") for log in logs)


def compose_logs() -> tuple[str, str]:
    """The whole logs of the Compose stack's Celery worker and api-server."""
    command = [*json.loads(os.environ["E2E_COMPOSE"]), "logs", "--no-color", "--no-log-prefix"]
    return tuple(
        subprocess.run([*command, service], capture_output=True, text=True, check=True).stdout
        for service in ("airflow-worker", "airflow-apiserver")
    )


def timelines_of(client: AirflowClient, samples: dict[str, list[dict]], executor_log: str) -> dict:
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
    beats = spread((int(m[1]) / 1000 for m in HEARTBEAT.finditer(api_log)), digits=2)
    return {"count": beats["n"], "median_ms": beats.get("median")}


def summarize(samples: dict[str, list[dict]], stack: str) -> dict:
    """The samples, and the medians, p90s and ratios the targets are judged on."""
    ml, control = (spread(s["wall_s"] for s in samples[d]) for d in (ML_DAG, CONTROL_DAG))
    ratio = ml["median"] / control["median"]
    p90_target = P90_OVER_MEDIAN_TARGET.get(stack)
    return {
        "samples": samples,
        "summary": {
            "stack": stack,
            "runs_per_dag": ml["n"],
            "ml_median_s": ml["median"],
            "ml_p90_s": ml["p90"],
            "ml_p90_over_median": round(ml["p90"] / ml["median"], 3),
            "control_median_s": control["median"],
            "control_p90_s": control["p90"],
            "ml_over_control": round(ratio, 3),
            "ratio_target": RATIO_TARGET,
            "ml_median_target_s": MEDIAN_TARGET_S[stack],
            "p90_over_median_target": p90_target,
            "meets_ratio": ratio <= RATIO_TARGET,
            "meets_median": ml["median"] <= MEDIAN_TARGET_S[stack],
            "meets_p90": None if p90_target is None else ml["p90"] <= p90_target * ml["median"],
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
    }


def latency_report(report: dict) -> Report:
    """The Report of ``summarize``'s figures with the timeline and heartbeats added."""
    s, timeline, beats = report["summary"], report["timeline"], report["heartbeats"]
    name, title = REPORTS[s["stack"]]
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
    if p90_target := s["p90_over_median_target"]:
        targets.append(
            Target(
                f"training p90 <= {p90_target}x its median",
                f"{s['ml_p90_s']:.2f} s = {s['ml_p90_over_median']:.2f}x",
                s["meets_p90"],
            )
        )
    figures = [
        (label, f"{s[f'{key}_median_s']:.2f}", f"{s[f'{key}_p90_s']:.2f}")
        for label, key in ((ML_DAG, "ml"), (f"{CONTROL_DAG} (baseline)", "control"))
    ]
    where = (
        "## Where the time goes\n\n"
        + task_timeline.__doc__.split("\n\n", 1)[1].strip()
        + "\n\n"
        + "\n".join(task_timeline.markdown(d, timeline[d]) for d in (ML_DAG, CONTROL_DAG))
        + "\nTraining minus control, summed over the chain (s): "
        + ", ".join(f"{k} {v:+.2f}" for k, v in timeline["ml_minus_control"].items())
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
        sections=[table(("", "median (s)", "p90 (s)"), figures), where, "## Runs\n\n" + runs],
        data=report,
    )


if __name__ == "__main__":
    sys.exit(main())
