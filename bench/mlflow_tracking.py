"""MLflow tracking: training-pipeline latency with tracking on vs off, and the footprint it adds.

    .venv/bin/python bench/mlflow_tracking.py [--runs 5] [--results DIR]

Two embedded stacks with the shipped settings run side by side: one with tracking off
(``MLFLOW_TRACKING_URI`` empty: ``load_model`` never loads MLflow), one with it on (every run
an MLflow run, its model logged and registered in the stack's MLflow server). Training runs
alternate between them, one at a time, after one warm-up run each, each after the monitor run
the previous one started has finished, so both see the same machine: trigger -> success wall
time, and ``load_model``'s own duration. Then, with the tracking-off stack stopped, the PSS at
idle of every component of the one with tracking on, the MLflow server among them
(bench/footprint.py's accounting). Target: median latency on/off <= 1.15.
"""

from __future__ import annotations

import time
from functools import partial

import task_timeline
from harness import (
    Report,
    Target,
    alternating,
    arguments,
    component_roots,
    embedded_stack,
    patient_client,
    publish,
    settled_run,
    spread,
    stack_memory,
    table,
)

from adclick_airflow.settings import RESULT_TASK_ID
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from airflow_rest import AirflowClient

RATIO_TARGET = 1.15
MODES = {"off": {"MLFLOW_TRACKING_URI": ""}, "on": {}}
IDLE_S = 20.0


def tracked_run(client: AirflowClient) -> dict:
    """``settled_run`` of the training DAG, with ``load_model``'s duration and whether the run
    was recorded in MLflow."""
    sample = settled_run(client, TRAINING)
    for task in client.task_instances(TRAINING, sample["run_id"]):
        if task["task_id"] == RESULT_TASK_ID:
            sample["load_model_s"] = task.get("duration")
    result = client.xcom(TRAINING, sample["run_id"], RESULT_TASK_ID) or {}
    timeline = task_timeline.run_timeline(client, TRAINING, sample["run_id"])
    return {**sample, "tracked": "mlflow" in result, "timeline": timeline}


def measure(runs: int) -> dict[str, dict]:
    with embedded_stack(extra_env=MODES["on"]) as on:
        with embedded_stack(extra_env=MODES["off"]) as off:
            stacks = {"off": off, "on": on}
            trials = {name: partial(tracked_run, patient_client(s)) for name, s in stacks.items()}
            samples = alternating(trials, runs)
        recorded = {name: [s["tracked"] for s in runs] for name, runs in samples.items()}
        if any(recorded["off"]) or not all(recorded["on"]):
            raise RuntimeError(f"runs recorded in MLflow, per mode: {recorded}")
        walls = {name: [s["wall_s"] for s in runs] for name, runs in samples.items()}
        print(f"trigger -> success (s): {walls}; idling", flush=True)
        time.sleep(IDLE_S)
        footprint = stack_memory(component_roots(on))
    return {
        name: {
            "env": MODES[name],
            "samples": runs,
            "wall_s": spread(s["wall_s"] for s in runs),
            "load_model_s": spread(s.get("load_model_s") for s in runs),
            "tracked": name == "on",
            "timeline": task_timeline.median_timeline([s["timeline"] for s in runs]),
            **({"footprint": footprint} if name == "on" else {}),
        }
        for name, runs in samples.items()
    }


def report(modes: dict[str, dict], runs: int) -> Report:
    off, on = modes["off"], modes["on"]
    ratio = on["wall_s"]["median"] / off["wall_s"]["median"]
    rows = [
        (
            name,
            m["wall_s"]["median"],
            m["wall_s"]["p90"],
            m["load_model_s"].get("median"),
            "yes" if m["tracked"] else "no",
        )
        for name, m in modes.items()
    ]
    footprint = on["footprint"]
    components = footprint["components"]
    component_rows = [(c, f"{v['pss_mb']:.0f}", v["processes"]) for c, v in components.items()]
    mlflow_mb = components.get("mlflow", {}).get("pss_mb", 0.0)
    difference = task_timeline.difference(on["timeline"], off["timeline"])
    return Report(
        name="mlflow_tracking",
        title="MLflow tracking: latency on vs off, and the footprint of the server",
        method=__doc__.split("\n\n", 2)[2].strip() + f"\n\n{runs} runs per mode.",
        targets=[
            Target(
                f"median trigger->success, tracking on / off <= {RATIO_TARGET}",
                f"{on['wall_s']['median']} s / {off['wall_s']['median']} s = {ratio:.3f}",
                ratio <= RATIO_TARGET,
            )
        ],
        sections=[
            table(("tracking", "median (s)", "p90 (s)", "load_model (s)", "recorded"), rows),
            "PSS at idle by component, tracking on, the other stack stopped: "
            f"{footprint['total_pss_mb']:.0f} MB in all\n\n"
            + table(("component", "PSS (MB)", "processes"), component_rows),
            f"The MLflow server takes {mlflow_mb:.0f} MB PSS; load_model median "
            f"{on['load_model_s'].get('median')} s on, "
            f"{off['load_model_s'].get('median')} s off. Tracking on minus off, per-task "
            "timeline (bench/task_timeline.py) summed over the chain (s): "
            + ", ".join(f"{k} {v:+.2f}" for k, v in difference.items())
            + ".",
        ],
        data={"ratio": round(ratio, 3), "modes": modes},
    )


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    publish(report(measure(args.runs), args.runs), args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
