"""Pipeline latency: training runs' trigger -> success against a baseline in the same run,
alternating after a warm-up run each, each after the monitor run the previous one started.

    .venv/bin/python bench/pipeline_latency.py [--against control|tracking-off|local] [--runs 11]
    bench/celery-stack                   # --against control --stack celery
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import harness
from harness import Report, Target, table

from adclick_airflow.settings import RESULT_TASK_ID
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from airflow_rest import AirflowClient
from testkit.datasets import SAMPLE_CSV
from testkit.objectstore import BUCKET, running_weed
from testkit.waiting import wait_until

CONTROL_DAG = "ad_click_control"
# Per stack: the training DAG's median (s) and, for Celery, p90 as a multiple of the median.
MEDIAN_TARGET_S = {"embedded": 3.0, "celery": 4.0}
P90_OVER_MEDIAN_TARGET = {"celery": 1.3}
COMPARISONS = {  # --against -> subject, baseline, ratio target
    "control": ("training DAG", "control DAG", 1.15),
    "tracking-off": ("tracking on", "tracking off", 1.15),
    "local": ("object store", "local directories", 1.2),
}
TITLES = {
    "control": "Pipeline latency ({stack})",
    "tracking-off": "MLflow tracking: pipeline latency on vs off",
    "local": "Pipeline latency: object store vs local directories",
}
BASELINES = {  # --against -> what the baseline is
    "control": "Baseline: a control DAG of the training DAG's shape and XCom traffic that does no "
    "work (bench/dags/ad_click_control.py), on the same stack.",
    "tracking-off": "Two embedded stacks: MLflow tracking on as shipped, and off "
    "(`MLFLOW_TRACKING_URI` empty) as the baseline.",
    "local": "Two embedded stacks: data, registry and run directories in a SeaweedFS S3 server "
    "(the dev lock's `weed`, on 127.0.0.1), and in local folders as the baseline.",
}
STACKS = {
    "embedded": "embedded stack: SQLite + LocalExecutor",
    "celery": "Compose stack: Postgres + Redis + CeleryExecutor",
}
ALTERNATING = (
    "Runs alternate between subject and baseline after a warm-up run each, each after the "
    "monitor run the previous training run started has finished."
)
Side = tuple[AirflowClient, str]  # a client and the DAG it runs


def result_name(against: str, stack: str) -> str:
    names = {"tracking-off": "mlflow_tracking", "local": "object_storage"}
    return names.get(against, "pipeline_latency" + ("_celery" if stack == "celery" else ""))


@contextmanager
def sides(against: str, stack: str) -> Iterator[tuple[Side, Side]]:
    """The subject and the baseline of ``against``, on stacks started here (Celery: found)."""
    client = lambda embedded: embedded.client(timeout=harness.SLOW_CALL_S)  # noqa: E731
    with ExitStack() as started:
        up = started.enter_context
        if stack == "celery":
            admin = harness.compose_stack().api("admin", timeout=harness.SLOW_CALL_S)
            yield (admin, TRAINING), (admin, CONTROL_DAG)
        elif against == "control":
            both = client(up(harness.embedded_stack([harness.BENCH_DAGS / f"{CONTROL_DAG}.py"])))
            yield (both, TRAINING), (both, CONTROL_DAG)
        elif against == "tracking-off":
            on = client(up(harness.embedded_stack()))
            off = client(up(harness.embedded_stack(extra_env={"MLFLOW_TRACKING_URI": ""})))
            yield (on, TRAINING), (off, TRAINING)
        else:
            store = up(running_weed(Path(up(tempfile.TemporaryDirectory()))))
            store.filesystem("writer").put(
                str(SAMPLE_CSV), f"{BUCKET}/bench/data/{SAMPLE_CSV.name}"
            )
            roots = {
                f"ADCLICK_{r}_DIR": f"s3://{BUCKET}/bench/{r.lower()}"
                for r in ("DATA", "MODEL", "ARTIFACT")
            }
            remote = client(up(harness.embedded_stack(extra_env={**roots, **store.env()})))
            yield (remote, TRAINING), (client(up(harness.embedded_stack())), TRAINING)


def measure(both: dict[str, Side], runs: int) -> tuple[dict, dict]:
    """Each side's trigger -> success, alternating; whether it recorded in MLflow."""
    for client, dag_id in both.values():
        wait_until(partial(client.dag_exists, dag_id), 180, f"{dag_id} parsed", poll=0.5)
        client.set_paused(dag_id, False)
    trials = {name: partial(harness.settled_run, *side) for name, side in both.items()}
    samples = harness.alternating(trials, runs)
    figures: dict = {name: harness.spread(s["wall_s"] for s in samples[name]) for name in both}
    figures["recorded_in_mlflow"] = {
        name: "mlflow" in (client.xcom(dag_id, samples[name][-1]["run_id"], RESULT_TASK_ID) or {})
        for name, (client, dag_id) in both.items()
    }
    return figures, samples


def report(f: dict) -> Report:
    subject, baseline, ratio_target = COMPARISONS[f["against"]]
    s, b, stack = f["subject"], f["baseline"], f["stack"]
    ratio = s["median"] / b["median"]
    measured = f"{s['median']:.2f} s vs {b['median']:.2f} s = {ratio:.3f}x"
    goal = f"{subject} median <= {ratio_target}x {baseline}"
    targets = [Target(goal, measured, ratio <= ratio_target)]
    if f["against"] == "control":
        limit, over = MEDIAN_TARGET_S[stack], s["p90"] / s["median"]
        goal, measured = f"training median <= {limit:.1f} s", f"{s['median']:.2f} s"
        targets.insert(0, Target(goal, measured, s["median"] <= limit))
        if p90_goal := P90_OVER_MEDIAN_TARGET.get(stack):
            goal = f"training p90 <= {p90_goal}x its median"
            targets.append(Target(goal, f"{s['p90']:.2f} s = {over:.2f}x", over <= p90_goal))
    rows = [
        (label, x["n"], *(f"{x[k]:.2f}" for k in ("median", "p90", "min", "max")))
        for label, x in ((subject, s), (baseline, b))
    ]
    header = ("", "runs", "median (s)", "p90 (s)", "min (s)", "max (s)")
    method = f"{BASELINES[f['against']]} {ALTERNATING} Runs per side: {s['n']}."
    name, title = result_name(f["against"], stack), TITLES[f["against"]].format(stack=STACKS[stack])
    return Report(name, title, method, targets, [table(header, rows)], f)


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
