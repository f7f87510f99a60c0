"""MLflow tracking: training-pipeline latency with tracking on vs off, and the footprint it adds.

    .venv/bin/python bench/mlflow_tracking.py [--runs 5] [--results DIR]

Boots the embedded stack twice in the same run, with the shipped settings: once with tracking
off (``MLFLOW_TRACKING_URI`` empty: ``load_model`` never loads MLflow) and once on (every run
an MLflow run, its model logged and registered in the stack's MLflow server). In each, one
warm-up run, then ``--runs`` training runs triggered through REST API v2, each after the
monitor run the previous one started has finished; trigger -> success wall time, and
``load_model``'s own duration. Then, at idle, the PSS of every component of the stack with
tracking on, the MLflow server among them (bench/footprint.py's accounting).
Targets: median latency on/off <= 1.15.
"""

from __future__ import annotations

import time

from harness import (
    Report,
    Target,
    arguments,
    component_roots,
    embedded_stack,
    publish,
    spread,
    stack_memory,
    table,
    timed_run,
    wait_until_monitor_idle,
)

from adclick_airflow.settings import RESULT_TASK_ID
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING

RATIO_TARGET = 1.15
MODES = {"off": {"MLFLOW_TRACKING_URI": ""}, "on": {}}
IDLE_S = 20.0


def load_model_seconds(client, run_id: str) -> float | None:
    for task in client.task_instances(TRAINING, run_id):
        if task["task_id"] == RESULT_TASK_ID:
            return task.get("duration")
    return None


def measure_mode(name: str, env: dict[str, str], runs: int) -> dict:
    print(f"[{name}] booting the embedded stack", flush=True)
    with embedded_stack(extra_env=env) as stack:
        client = stack.client()
        client.set_paused(TRAINING, False)
        timed_run(client, TRAINING)  # warm-up: cold imports, first parse, first registration
        wait_until_monitor_idle(client)
        samples = []
        for _ in range(runs):
            sample = timed_run(client, TRAINING)
            sample["load_model_s"] = load_model_seconds(client, sample["run_id"])
            samples.append(sample)
            wait_until_monitor_idle(client)
        result = client.xcom(TRAINING, samples[-1]["run_id"], RESULT_TASK_ID) or {}
        print(f"[{name}] runs {[s['wall_s'] for s in samples]} s; idling", flush=True)
        time.sleep(IDLE_S)
        footprint = stack_memory(component_roots(stack))
    return {
        "env": env,
        "samples": samples,
        "wall_s": spread(s["wall_s"] for s in samples),
        "load_model_s": spread(s["load_model_s"] for s in samples),
        "tracked": "mlflow" in result,
        "footprint": footprint,
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
            f"{m['footprint']['total_pss_mb']:.0f}",
        )
        for name, m in modes.items()
    ]
    components = on["footprint"]["components"]
    off_components = off["footprint"]["components"]
    component_rows = [
        (
            c,
            f"{v['pss_mb']:.0f}",
            v["processes"],
            f"{off_components.get(c, {}).get('pss_mb', 0):.0f}",
        )
        for c, v in components.items()
    ]
    mlflow_mb = components.get("mlflow", {}).get("pss_mb", 0.0)
    return Report(
        name="mlflow_tracking",
        title="MLflow tracking: latency on vs off, and the footprint of the server",
        method=__doc__.split("\n\n", 2)[2].strip() + f"\n\n{runs} runs per mode.",
        targets=[
            Target(
                f"median trigger->success, tracking on / off <= {RATIO_TARGET}",
                f"{on['wall_s']['median']} s / {off['wall_s']['median']} s = {ratio:.2f}",
                ratio <= RATIO_TARGET,
            )
        ],
        sections=[
            table(
                ("tracking", "median (s)", "p90 (s)", "load_model (s)", "recorded", "PSS (MB)"),
                rows,
            ),
            "PSS at idle by component (MB), tracking on (processes), and off:\n\n"
            + table(("component", "on", "processes", "off"), component_rows),
            f"The MLflow server adds {mlflow_mb:.0f} MB PSS; load_model median "
            f"{on['load_model_s'].get('median')} s on, "
            f"{off['load_model_s'].get('median')} s off.",
        ],
        data={"ratio": round(ratio, 3), "modes": modes},
    )


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    modes = {name: measure_mode(name, env, args.runs) for name, env in MODES.items()}
    publish(report(modes, args.runs), args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
