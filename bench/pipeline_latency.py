"""Pipeline latency: training runs' trigger -> success against a baseline in the same run.

    .venv/bin/python bench/pipeline_latency.py [--against control|tracking-off|local] [--runs 11]
    bench/celery-stack                   # --against control on the Compose stack

``--against`` picks the baseline and the result:

* ``control`` (pipeline_latency, or pipeline_latency_celery with ``--stack celery``): a
  control DAG of the training DAG's shape and XCom traffic that does no work
  (bench/dags/ad_click_control.py), on the same stack;
* ``tracking-off`` (mlflow_tracking): a second embedded stack with MLflow tracking off
  (``MLFLOW_TRACKING_URI`` empty), against one with it on as shipped;
* ``local`` (object_storage): a second embedded stack with data, registry and run
  directories in local folders, against one with all three in a SeaweedFS S3 server (the
  dev lock's ``weed``, on 127.0.0.1).

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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from harness import (
    BENCH_DAGS,
    SLOW_CALL_S,
    TIMELINE_DOC,
    Report,
    Target,
    alternating,
    arguments,
    compose_stack_client,
    difference,
    embedded_stack,
    median_timeline,
    publish,
    rebuild,
    run_timeline,
    settled_run,
    spread,
    supervisor_done_times,
    table,
    timeline_table,
)

from adclick_airflow.settings import RESULT_TASK_ID
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from airflow_rest import AirflowClient
from embedded.stack import EmbeddedStack
from testkit.datasets import SAMPLE_CSV
from testkit.objectstore import BUCKET, running_weed
from testkit.waiting import wait_until

CONTROL_DAG = "ad_click_control"
# Per stack: the training DAG's median (s) and, for Celery, p90 as a multiple of the median.
MEDIAN_TARGET_S = {"embedded": 3.0, "celery": 4.0}
P90_OVER_MEDIAN_TARGET = {"celery": 1.3}
STORAGE = ("DATA", "MODEL", "ARTIFACT")  # the roots --against local moves to the object store
HEARTBEAT = re.compile(r"duration_us=(\d+).*path=/execution/task-instances/[\w-]+/heartbeat")


@dataclass
class Comparison:
    subject: str
    baseline: str
    ratio_target: float
    title: str
    what: str


COMPARISONS = {
    "control": Comparison(
        "training DAG",
        "control DAG",
        1.15,
        "",
        "Baseline: a control DAG of the training DAG's shape and XCom traffic that does no work "
        "(bench/dags/ad_click_control.py), on the same stack.",
    ),
    "tracking-off": Comparison(
        "tracking on",
        "tracking off",
        1.15,
        "MLflow tracking: pipeline latency on vs off",
        "Two embedded stacks: MLflow tracking on as shipped, and off (`MLFLOW_TRACKING_URI` "
        "empty) as the baseline.",
    ),
    "local": Comparison(
        "object store",
        "local directories",
        1.2,
        "Pipeline latency: object store vs local directories",
        "Two embedded stacks: data, registry and run directories in a SeaweedFS S3 server (the "
        "dev lock's `weed`, on 127.0.0.1), and in local folders as the baseline.",
    ),
}
STACK_TITLES = {
    "embedded": "Pipeline latency (embedded stack: SQLite + LocalExecutor)",
    "celery": "Pipeline latency (Compose stack: Postgres + Redis + CeleryExecutor)",
}


@dataclass
class Side:
    """What one side of a comparison runs, and where its executor's and api-server's logs are."""

    client: AirflowClient
    dag_id: str
    logs: Callable[[], tuple[str, str]]


def result_name(against: str, stack: str) -> str:
    if against == "control":
        return "pipeline_latency_celery" if stack == "celery" else "pipeline_latency"
    return {"tracking-off": "mlflow_tracking", "local": "object_storage"}[against]


def embedded_side(stack: EmbeddedStack, dag_id: str = TRAINING) -> Side:
    """``dag_id`` on an embedded stack: its scheduler (the LocalExecutor) and api-server logs."""
    logs = [stack.log_dir / f"{c}.log" for c in ("scheduler", "api-server")]
    read = lambda: [p.read_text(errors="replace") for p in logs]  # noqa: E731
    return Side(stack.client(timeout=SLOW_CALL_S), dag_id, read)


def compose_logs() -> tuple[str, str]:
    """The whole logs of the Compose stack's Celery worker and api-server."""
    command = [*json.loads(os.environ["E2E_COMPOSE"]), "logs", "--no-color", "--no-log-prefix"]
    return tuple(
        subprocess.run([*command, service], capture_output=True, text=True, check=True).stdout
        for service in ("airflow-worker", "airflow-apiserver")
    )


@contextmanager
def sides(against: str, stack: str) -> Iterator[tuple[Side, Side]]:
    """The subject and the baseline of ``against``, on stacks started here (Celery: found)."""
    with ExitStack() as started:
        if against == "control" and stack == "celery":
            client = compose_stack_client()
            yield Side(client, TRAINING, compose_logs), Side(client, CONTROL_DAG, compose_logs)
        elif against == "control":
            on = started.enter_context(embedded_stack([BENCH_DAGS / "ad_click_control.py"]))
            yield embedded_side(on), embedded_side(on, CONTROL_DAG)
        elif against == "tracking-off":
            on = started.enter_context(embedded_stack())
            off = started.enter_context(embedded_stack(extra_env={"MLFLOW_TRACKING_URI": ""}))
            yield embedded_side(on), embedded_side(off)
        else:
            tmp = started.enter_context(tempfile.TemporaryDirectory(prefix="adclick-bench-s3-"))
            store = started.enter_context(running_weed(Path(tmp)))
            store.filesystem("writer").put(
                str(SAMPLE_CSV), f"{BUCKET}/bench/data/{SAMPLE_CSV.name}"
            )
            roots = {f"ADCLICK_{r}_DIR": f"s3://{BUCKET}/bench/{r.lower()}" for r in STORAGE}
            remote = started.enter_context(embedded_stack(extra_env={**roots, **store.env()}))
            yield embedded_side(remote), embedded_side(started.enter_context(embedded_stack()))


def measure(subject: Side, baseline: Side, runs: int) -> tuple[dict, dict]:
    """Figures and samples: each side's trigger -> success, alternating after a warm-up
    run each; then, from each side's logs, its median per-task timeline and the heartbeats."""
    both = {"subject": subject, "baseline": baseline}
    for side in both.values():
        parsed = f"{side.dag_id} to be parsed"
        wait_until(lambda s=side: s.client.dag_exists(s.dag_id), 180, parsed, poll=0.5)
        side.client.set_paused(side.dag_id, False)
    trials = {name: partial(settled_run, s.client, s.dag_id) for name, s in both.items()}
    samples = alternating(trials, runs)
    figures: dict = {name: spread(s["wall_s"] for s in samples[name]) for name in both}
    figures["timeline"] = {}
    for name, side in both.items():
        executor_log, api_log = side.logs()
        done = supervisor_done_times(executor_log)
        timelines = [
            run_timeline(side.client, side.dag_id, s["run_id"], done) for s in samples[name]
        ]
        figures["timeline"][name] = median_timeline(timelines)
        if name == "subject":
            beats = spread((int(m[1]) / 1000 for m in HEARTBEAT.finditer(api_log)), digits=2)
            figures["heartbeats"] = {"count": beats["n"], "median_ms": beats.get("median")}
    return figures, samples


def recorded_in_mlflow(side: Side, run_id: str) -> bool:
    return "mlflow" in (side.client.xcom(side.dag_id, run_id, RESULT_TASK_ID) or {})


def report(f: dict) -> Report:
    """The Report of ``measure``'s figures of one comparison."""
    against, stack = f["against"], f["stack"]
    c, s, b = COMPARISONS[against], f["subject"], f["baseline"]
    ratio = s["median"] / b["median"]
    targets = [
        Target(
            f"{c.subject} median <= {c.ratio_target}x {c.baseline}",
            f"{s['median']:.2f} s vs {b['median']:.2f} s = {ratio:.3f}x",
            ratio <= c.ratio_target,
        )
    ]
    if against == "control":
        goal = MEDIAN_TARGET_S[stack]
        met = s["median"] <= goal
        targets.insert(0, Target(f"training median <= {goal:.1f} s", f"{s['median']:.2f} s", met))
        if p90_target := P90_OVER_MEDIAN_TARGET.get(stack):
            over = s["p90"] / s["median"]
            measured = f"{s['p90']:.2f} s = {over:.2f}x"
            targets.append(
                Target(f"training p90 <= {p90_target}x its median", measured, over <= p90_target)
            )
    rows = [
        (label, x["n"], *(f"{x[k]:.2f}" for k in ("median", "p90", "min", "max")))
        for label, x in ((c.subject, s), (c.baseline, b))
    ]
    sections = [table(("", "runs", "median (s)", "p90 (s)", "min (s)", "max (s)"), rows)]
    if timeline := f.get("timeline"):
        sections.append(
            "## Where the time goes\n\n"
            + TIMELINE_DOC
            + "".join(
                f"\n\n{timeline_table(label, timeline[key])}"
                for key, label in (("subject", c.subject), ("baseline", c.baseline))
            )
            + "\n\nSubject minus baseline, summed over the chain (s): "
            + difference(timeline["subject"], timeline["baseline"])
            + "."
        )
    if beats := f.get("heartbeats"):
        sections.append(
            f"Task heartbeats seen by the subject's api-server: {beats['count']}, median "
            f"{beats['median_ms']} ms each (one request and one row update per running task per "
            "`[workers] min_heartbeat_interval`)."
        )
    method = __doc__.strip().split("\n\n")[-1]
    return Report(
        name=result_name(against, stack),
        title=c.title or STACK_TITLES[stack],
        method=f"{c.what} {method}\n\n{s['n']} runs per side (`--against {against}`).",
        targets=targets,
        sections=sections,
        figures=f,
    )


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--against", choices=list(COMPARISONS), default="control")
    parser.add_argument("--stack", choices=list(STACK_TITLES), default="embedded")
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args(argv)
    if args.rebuild:
        names = {result_name(a, s) for a in COMPARISONS for s in STACK_TITLES}
        return rebuild(dict.fromkeys(names, report), args.results)
    if args.stack == "celery" and args.against != "control":
        parser.error("on the Celery stack only --against control")
    with sides(args.against, args.stack) as (subject, baseline):
        figures, samples = measure(subject, baseline, args.runs)
        last = (
            recorded_in_mlflow(s, samples[n][-1]["run_id"])
            for n, s in (("subject", subject), ("baseline", baseline))
        )
        if args.against == "tracking-off" and list(last) != [True, False]:
            raise RuntimeError("tracking on and off: the runs were not recorded in MLflow as set")
    result = report({"against": args.against, "stack": args.stack, **figures})
    result.samples = samples
    publish(result, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
