"""Compose start-up: `docker compose up -d --wait` with built images, to every service healthy,
and on to the first successful training run.

    bench/celery-stack        # runs this against the stack scripts/e2e-docker brings up

Takes the stack down (volumes too) and brings it up again from the built images, twice: with
the shipped health checks, and with ``bench/compose.health-reference.yaml`` (the start-up of
Airflow's reference Compose file) as the baseline. For each: when every container started and
was first seen healthy (``airflow-init``: exited 0), the time ``up --wait`` took, the time to
the first successful training run, and the CPU each container's cgroup had used when ``up
--wait`` returned: the boot's work, which the host's cores share.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import harness
from harness import Report, Target, cell, table

from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING_DAG
from embedded.stack import REPO_ROOT
from testkit.compose import docker, project_containers
from testkit.waiting import wait_until

TARGET_S = 30.0
REFERENCE_CHECKS = REPO_ROOT / "bench" / "compose.health-reference.yaml"
BASELINE, SHIPPED = "reference checks (baseline)", "shipped"


def with_files(command: list[str], extra: list[Path]) -> list[str]:
    """The stack's compose command line with more ``-f`` files after its own."""
    last_file = max(i for i, arg in enumerate(command) if arg == "-f") + 2
    return (
        command[:last_file] + [a for path in extra for a in ("-f", str(path))] + command[last_file:]
    )


def ready(project: str) -> frozenset[str]:
    """The project's services whose container is healthy, or exited 0."""
    query = ("ps", "-a", "--filter", f"label=com.docker.compose.project={project}", "--format")
    listing = docker(*query, '{{.Label "com.docker.compose.service"}}\t{{.Status}}')
    states = (line.partition("\t")[::2] for line in listing.splitlines())
    return frozenset(
        s for s, status in states if "(healthy)" in status or status.startswith("Exited (0)")
    )


def first_training_run(up_started: float) -> float:
    """Seconds from the start of ``up`` to the first training run seen succeeding."""
    client = harness.compose_stack().api("admin", timeout=60.0)
    wait_until(lambda: client.dag_exists(TRAINING_DAG), 300, f"{TRAINING_DAG} parsed", poll=0.2)
    client.set_paused(TRAINING_DAG, False)
    run = client.trigger(TRAINING_DAG, {})
    state = client.wait_for_run(TRAINING_DAG, run["dag_run_id"], timeout=300, poll=0.1)["state"]
    if state != "success":
        raise RuntimeError(f"first training run {run['dag_run_id']} ended {state}")
    return round(time.time() - up_started, 2)


def start_once(command: list[str], project: str) -> dict:
    """Down with the volumes, then up: when each container started and was first ready (s
    after ``up`` began), its CPU seconds when ``up --wait`` returned, and the run's times."""
    subprocess.run([*command, "down", "-v", "--timeout", "10"], check=True, capture_output=True)
    started, watch = time.time(), harness.Sampler(lambda: ready(project), 0.25)
    up = [*command, "up", "-d", "--wait", "--wait-timeout", "600", "--no-build"]
    subprocess.run(up, check=True, capture_output=True)
    up_s, services = round(time.time() - started, 2), {}
    for c in project_containers(project, stopped=True):  # one-shot containers have no CPU left
        services[c["Config"]["Labels"]["com.docker.compose.service"]] = {
            "started_s": round(
                datetime.fromisoformat(c["State"]["StartedAt"]).timestamp() - started, 2
            ),
            "cpu_s": harness.cpu_seconds(c["State"]["Pid"]) if c["State"]["Pid"] else None,
            "ready_s": None,
        }
    training_s = first_training_run(started)
    watch.stop()
    for asked, _, services_ready in reversed(watch.seen):
        for service in services_ready & services.keys():
            services[service]["ready_s"] = round(asked - started, 2)
    return {
        "up_wait_s": up_s,
        "first_training_success_s": training_s,
        "services": dict(sorted(services.items())),
    }


def report(f: dict) -> Report:
    runs = f["runs"]
    shipped, baseline = runs[SHIPPED], runs[BASELINE]
    ratio = shipped["up_wait_s"] / baseline["up_wait_s"]
    services = sorted(shipped["services"], key=lambda s: shipped["services"][s]["ready_s"] or 1e9)

    def timeline(run: dict, service: str) -> str:
        found = run["services"].get(service, {})
        return f"{cell(found.get('started_s'), 1)} -> {cell(found.get('ready_s'), 1)}"

    rows = [
        (s, *(timeline(run, s) for run in runs.values()), cell(shipped["services"][s]["cpu_s"], 1))
        for s in services
    ]
    boot_cpu = {n: sum(v["cpu_s"] or 0 for v in r["services"].values()) for n, r in runs.items()}
    cores = f["cpus"]
    return Report(
        name="compose_startup",
        title="Compose start-up (built images, fresh volumes)",
        method=__doc__.split("\n\n", 2)[2].strip(),
        targets=[
            Target(
                f"`up -d --wait` <= {TARGET_S:.0f} s",
                f"{shipped['up_wait_s']:.1f} s (baseline {baseline['up_wait_s']:.1f} s, "
                f"{ratio:.2f}x)",
                shipped["up_wait_s"] <= TARGET_S,
            )
        ],
        sections=[
            table(
                "health checks | `up -d --wait` (s) | first training run succeeded (s)",
                (
                    (n, cell(r["up_wait_s"], 1), cell(r["first_training_success_s"], 1))
                    for n, r in runs.items()
                ),
            ),
            "Per service, seconds after `up` began: container started -> first seen healthy "
            "(`airflow-init`: exited 0); and the CPU its container had used when `up --wait` "
            "returned (shipped; one-shot containers already gone: -).\n\n"
            + table(("service", *runs, "CPU s (shipped)"), rows),
            "CPU used by the running containers by then: "
            + ", ".join(f"{name} {cpu:.1f} s" for name, cpu in boot_cpu.items())
            + f"; on {cores} cores that much work takes at least "
            + ", ".join(f"{cpu / cores:.1f} s" for cpu in boot_cpu.values())
            + " of the start-up.",
        ],
        figures=f,
    )


def main(argv: list[str] | None = None) -> int:
    args = harness.Arguments(__doc__, {"compose_startup": report}).parse_args(argv)
    if not os.environ.get("E2E_COMPOSE"):
        raise SystemExit("no Compose stack: run this through bench/celery-stack")
    command = json.loads(os.environ["E2E_COMPOSE"])
    project = command[command.index("-p") + 1]
    variants = {BASELINE: with_files(command, [REFERENCE_CHECKS]), SHIPPED: command}
    runs = {name: start_once(cmd, project) for name, cmd in variants.items()}
    harness.publish(report({"cpus": os.cpu_count(), "runs": runs}), args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
