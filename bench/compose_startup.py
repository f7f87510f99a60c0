"""Compose start-up: ``docker compose up -d --wait`` from the built images and fresh volumes, to
every service healthy and on to the first successful training run, with the shipped health
checks and with bench/compose.health-reference.yaml (those of Airflow's reference Compose file).

    bench/celery-stack        # runs this against the stack scripts/e2e-docker brings up
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import harness
from harness import Report, Target, cell, table

from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING_DAG
from embedded.stack import REPO_ROOT
from testkit.waiting import wait_until

TARGET_S = 30.0
REFERENCE_CHECKS = REPO_ROOT / "bench" / "compose.health-reference.yaml"
BASELINE, SHIPPED = "reference checks (baseline)", "shipped"


def start_once(command: list[str]) -> dict:
    """Down with the volumes, then up: the time ``up --wait`` took and to a first run."""
    subprocess.run([*command, "down", "-v", "--timeout", "10"], check=True, capture_output=True)
    started = time.monotonic()
    up = [*command, "up", "-d", "--wait", "--wait-timeout", "600", "--no-build"]
    subprocess.run(up, check=True, capture_output=True)
    up_s = round(time.monotonic() - started, 2)
    client = harness.compose_stack().api("admin", timeout=60.0)
    wait_until(lambda: client.dag_exists(TRAINING_DAG), 300, f"{TRAINING_DAG} parsed", poll=0.2)
    client.set_paused(TRAINING_DAG, False)
    run_id = client.trigger(TRAINING_DAG, {})["dag_run_id"]
    state = client.wait_for_run(TRAINING_DAG, run_id, timeout=300, poll=0.1)["state"]
    if state != "success":
        raise RuntimeError(f"first training run {run_id} ended {state}")
    return {"up_wait_s": up_s, "first_training_success_s": round(time.monotonic() - started, 2)}


def report(f: dict) -> Report:
    runs = f["runs"]
    shipped, baseline = runs[SHIPPED]["up_wait_s"], runs[BASELINE]["up_wait_s"]
    measured = f"{shipped:.1f} s (baseline {baseline:.1f} s, {shipped / baseline:.2f}x)"
    target = Target(f"`up -d --wait` <= {TARGET_S:.0f} s", measured, shipped <= TARGET_S)
    header = "health checks | `up -d --wait` (s) | first training run succeeded (s)"
    rows = [
        (n, cell(r["up_wait_s"], 1), cell(r["first_training_success_s"], 1))
        for n, r in runs.items()
    ]
    method = (
        "Takes the stack down (volumes too) and brings it up again from the built images, "
        "twice: with the reference health checks (the baseline), then with the shipped ones."
    )
    title = "Compose start-up (built images, fresh volumes)"
    return Report("compose_startup", title, method, [target], [table(header, rows)], f)


def main(argv: list[str] | None = None) -> int:
    args = harness.Arguments(__doc__, {"compose_startup": report}).parse_args(argv)
    if not os.environ.get("E2E_COMPOSE"):
        raise SystemExit("no Compose stack: run this through bench/celery-stack")
    command = json.loads(os.environ["E2E_COMPOSE"])
    last_file = max(i for i, arg in enumerate(command) if arg == "-f") + 2
    reference = [*command[:last_file], "-f", str(REFERENCE_CHECKS), *command[last_file:]]
    runs = {name: start_once(cmd) for name, cmd in ((BASELINE, reference), (SHIPPED, command))}
    harness.publish(report({"runs": runs}), args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
