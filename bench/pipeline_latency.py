"""Pipeline latency: training runs' trigger -> success against a baseline in the same run.

    .venv/bin/python bench/pipeline_latency.py [--against control|tracking-off|local] [--runs 11]
    bench/celery-stack                   # --against control --stack celery

Runs alternate between subject and baseline after one warm-up run each, each after the monitor
run the previous training run started has finished, so both see the same machine. Reported:
medians and their ratio, and each side's per-task timeline (the harness' ``run_timeline``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import harness
from harness import Report, Target, table, timeline_table

from adclick_airflow.settings import RESULT_TASK_ID
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from embedded.stack import EmbeddedStack
from testkit.datasets import SAMPLE_CSV
from testkit.objectstore import BUCKET, running_weed
from testkit.waiting import wait_until

CONTROL_DAG = "ad_click_control"
# Per stack: the training DAG's median (s) and, for Celery, p90 as a multiple of the median.
MEDIAN_TARGET_S = {"embedded": 3.0, "celery": 4.0}
P90_OVER_MEDIAN_TARGET = {"celery": 1.3}
HEARTBEAT = re.compile(r"duration_us=(\d+).*path=/execution/task-instances/[\w-]+/heartbeat")
COMPARISONS = {  # --against -> subject, baseline, ratio target, title, what the baseline is
    "control": (
        "training DAG",
        "control DAG",
        1.15,
        "Pipeline latency ({stack})",
        "Baseline: a control DAG of the training DAG's shape and XCom traffic that does no work "
        "(bench/dags/ad_click_control.py), on the same stack.",
    ),
    "tracking-off": (
        "tracking on",
        "tracking off",
        1.15,
        "MLflow tracking: pipeline latency on vs off",
        "Two embedded stacks: MLflow tracking on as shipped, and off (`MLFLOW_TRACKING_URI` "
        "empty) as the baseline.",
    ),
    "local": (
        "object store",
        "local directories",
        1.2,
        "Pipeline latency: object store vs local directories",
        "Two embedded stacks: data, registry and run directories in a SeaweedFS S3 server (the "
        "dev lock's `weed`, on 127.0.0.1), and in local folders as the baseline.",
    ),
}
STACKS = {
    "embedded": "embedded stack: SQLite + LocalExecutor",
    "celery": "Compose stack: Postgres + Redis + CeleryExecutor",
}
Side = tuple  # a client, the DAG it runs, and a call returning its executor's and API's logs


def result_name(against: str, stack: str) -> str:
    names = {"tracking-off": "mlflow_tracking", "local": "object_storage"}
    return names.get(against, "pipeline_latency" + ("_celery" if stack == "celery" else ""))


def embedded_side(stack: EmbeddedStack, dag_id: str = TRAINING) -> Side:
    """``dag_id`` on an embedded stack: its scheduler (the LocalExecutor) and api-server logs."""
    logs = [stack.log_dir / f"{c}.log" for c in ("scheduler", "api-server")]
    read = lambda: [p.read_text("utf-8", "replace") for p in logs]  # noqa: E731
    return stack.client(timeout=harness.SLOW_CALL_S), dag_id, read


def compose_logs() -> list[str]:
    """The whole logs of the Compose stack's Celery worker and api-server."""
    command = [*json.loads(os.environ["E2E_COMPOSE"]), "logs", "--no-color", "--no-log-prefix"]
    run = partial(subprocess.run, capture_output=True, text=True, check=True)
    return [run([*command, service]).stdout for service in ("airflow-worker", "airflow-apiserver")]


@contextmanager
def sides(against: str, stack: str) -> Iterator[tuple[Side, Side]]:
    """The subject and the baseline of ``against``, on stacks started here (Celery: found)."""
    with ExitStack() as started:
        up = started.enter_context
        if stack == "celery":
            client = harness.compose_stack().api("admin", timeout=harness.SLOW_CALL_S)
            yield (client, TRAINING, compose_logs), (client, CONTROL_DAG, compose_logs)
        elif against == "control":
            on = up(harness.embedded_stack([harness.BENCH_DAGS / "ad_click_control.py"]))
            yield embedded_side(on), embedded_side(on, CONTROL_DAG)
        elif against == "tracking-off":
            on = up(harness.embedded_stack())
            off = up(harness.embedded_stack(extra_env={"MLFLOW_TRACKING_URI": ""}))
            yield embedded_side(on), embedded_side(off)
        else:
            store = up(running_weed(Path(up(tempfile.TemporaryDirectory()))))
            store.filesystem("writer").put(
                str(SAMPLE_CSV), f"{BUCKET}/bench/data/{SAMPLE_CSV.name}"
            )
            roots = {
                f"ADCLICK_{r}_DIR": f"s3://{BUCKET}/bench/{r.lower()}"
                for r in ("DATA", "MODEL", "ARTIFACT")
            }
            remote = up(harness.embedded_stack(extra_env={**roots, **store.env()}))
            yield embedded_side(remote), embedded_side(up(harness.embedded_stack()))


def measure(both: dict[str, Side], runs: int) -> tuple[dict, dict]:
    """Figures and samples: each side's trigger -> success, alternating after a warm-up
    run each; then, from each side's logs, its median per-task timeline and the heartbeats."""
    for client, dag_id, _ in both.values():
        wait_until(partial(client.dag_exists, dag_id), 180, f"{dag_id} parsed", poll=0.5)
        client.set_paused(dag_id, False)
    trials = {
        name: partial(harness.settled_run, client, dag_id)
        for name, (client, dag_id, _) in both.items()
    }
    samples = harness.alternating(trials, runs)
    figures: dict = {name: harness.spread(s["wall_s"] for s in samples[name]) for name in both}
    figures["timeline"], figures["recorded_in_mlflow"] = {}, {}
    for name, (client, dag_id, logs) in both.items():
        executor_log, api_log = logs()
        if name == "subject":
            beats = harness.spread(
                (int(m[1]) / 1000 for m in HEARTBEAT.finditer(api_log)), digits=2
            )
            figures["heartbeats"] = {"count": beats["n"], "median_ms": beats.get("median")}
        done = harness.supervisor_done_times(executor_log)
        timelines = [harness.run_timeline(client, dag_id, s["run_id"], done) for s in samples[name]]
        figures["timeline"][name] = harness.median_timeline(timelines)
        result = client.xcom(dag_id, samples[name][-1]["run_id"], RESULT_TASK_ID) or {}
        figures["recorded_in_mlflow"][name] = "mlflow" in result
    return figures, samples


def report(f: dict) -> Report:
    """The Report of ``measure``'s figures of one comparison."""
    subject, baseline, ratio_target, title, what = COMPARISONS[f["against"]]
    s, b, stack = f["subject"], f["baseline"], f["stack"]
    ratio = s["median"] / b["median"]
    measured = f"{s['median']:.2f} s vs {b['median']:.2f} s = {ratio:.3f}x"
    targets = [
        Target(f"{subject} median <= {ratio_target}x {baseline}", measured, ratio <= ratio_target)
    ]
    if f["against"] == "control":
        goal, over = MEDIAN_TARGET_S[stack], s["p90"] / s["median"]
        targets.insert(
            0,
            Target(f"training median <= {goal:.1f} s", f"{s['median']:.2f} s", s["median"] <= goal),
        )
        if p90_goal := P90_OVER_MEDIAN_TARGET.get(stack):
            goal = f"training p90 <= {p90_goal}x its median"
            targets.append(Target(goal, f"{s['p90']:.2f} s = {over:.2f}x", over <= p90_goal))
    rows = [
        (label, x["n"], *(f"{x[k]:.2f}" for k in ("median", "p90", "min", "max")))
        for label, x in ((subject, s), (baseline, b))
    ]
    sections = [table(("", "runs", "median (s)", "p90 (s)", "min (s)", "max (s)"), rows)]
    if timeline := f.get("timeline"):
        sections += [
            "## Where the time goes",
            harness.TIMELINE_DOC,
            timeline_table(subject, timeline["subject"]),
            timeline_table(baseline, timeline["baseline"]),
            "Subject minus baseline, summed over the chain (s): "
            + harness.difference(timeline["subject"], timeline["baseline"])
            + ".",
        ]
    if beats := f.get("heartbeats"):
        sections.append(
            f"Task heartbeats seen by the api-server: {beats['count']}, median "
            f"{beats['median_ms']} ms each (one request and one row update per running task per "
            "`[workers] min_heartbeat_interval`)."
        )
    return Report(
        name=result_name(f["against"], stack),
        title=title.format(stack=STACKS[stack]),
        method=f"{what} {__doc__.split(chr(10) * 2)[2].strip()} Runs per side: {s['n']}.",
        targets=targets,
        sections=sections,
        figures=f,
    )


def main(argv: list[str] | None = None) -> int:
    names = {result_name(a, s) for a in COMPARISONS for s in STACKS}
    parser = harness.Arguments(__doc__, dict.fromkeys(names, report))
    parser.add_argument("--against", choices=list(COMPARISONS), default="control")
    parser.add_argument("--stack", choices=list(STACKS), default="embedded", help="for control")
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args(argv)
    if args.stack == "celery" and args.against != "control":
        parser.error("on the Celery stack only --against control")
    with sides(args.against, args.stack) as (subject, baseline):
        figures, samples = measure({"subject": subject, "baseline": baseline}, args.runs)
    recorded = list(figures["recorded_in_mlflow"].values())
    if args.against == "tracking-off" and recorded != [True, False]:
        raise RuntimeError(f"runs recorded in MLflow, tracking on and off: {recorded}")
    figures = {"against": args.against, "stack": args.stack, **figures}
    harness.publish(report(figures), args.results, samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
