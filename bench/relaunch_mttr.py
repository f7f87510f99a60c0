"""Relaunch MTTR: crash or hang the Flask monitor, time until `/health` answers 200 again.

    .venv/bin/python bench/relaunch_mttr.py [--kills 7]

On the embedded stack with the shipped settings, where `ad_click_flask_watchdog` (continuous,
waiting in the triggerer) keeps the service up, faults go to the whole gunicorn process group:
SIGKILL (a crash, or the OOM killer) and SIGSTOP (a hang: alive, holding the port, answering
nothing; sent once the service is past its boot window, ``BOOT_TIMEOUT_S``). Baseline in the
same run: the watchdog switched off and the five-minute `ad_click_monitor` DAG triggered right
at each kill, its best case (on its schedule it would first wait for its next tick: 150 s on
average on top). Target: watchdog median <= 10 s over >= 5 kills, for the crash and the hang.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

import harness
from harness import Report, Target, cell, spread, table

from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR
from embedded.stack import EmbeddedStack
from flask_launcher.health import BOOT_TIMEOUT_S
from flask_launcher.process import process_age
from testkit.flask_service import flask_pid, health
from testkit.waiting import wait_until
from testkit.watchdog import WATCHDOG, switch_off_watchdog, watchdog_waiting

TARGET_S = 10.0


def fault_and_time(stack: EmbeddedStack, signum: int, recover: Callable = lambda: None) -> float:
    """``signum`` to the service's process group; seconds until /health answers 200 again."""
    os.killpg(flask_pid(stack), signum)
    faulted = time.perf_counter()
    recover()
    wait_until(lambda: health(stack) == 200, 120, "/health to answer again", poll=0.02)
    return round(time.perf_counter() - faulted, 3)


def measure_watchdog(stack: EmbeddedStack, kills: int, signum: int) -> list[float]:
    """``kills`` recoveries by the watchdog, after one that warms up the relaunch path."""
    client, samples = stack.client(), []
    for _ in range(kills + 1):
        wait_until(lambda: health(stack) == 200 and watchdog_waiting(client), 120, "watchdog ready")
        if signum == signal.SIGSTOP:
            # Silent within BOOT_TIMEOUT_S of its start, a service may still be booting and is
            # given that long; a hang is of a service that has been serving.
            booted = lambda: process_age(flask_pid(stack)) >= BOOT_TIMEOUT_S  # noqa: E731
            wait_until(booted, BOOT_TIMEOUT_S + 10, "the service to be past its boot window")
        samples.append(fault_and_time(stack, signum))
    return samples[1:]


def measure_monitor_dag(stack: EmbeddedStack, kills: int) -> list[float]:
    """``kills`` crashes, each recovered by a monitor DAG run triggered at the kill."""
    client, samples = stack.client(), []
    for _ in range(kills):
        wait_until(lambda: health(stack) == 200, 60, "Flask up")
        samples.append(fault_and_time(stack, signal.SIGKILL, lambda: client.trigger(MONITOR, {})))
        client.wait_for_run(MONITOR, client.latest_run(MONITOR)["dag_run_id"], timeout=120)
    return samples


def report(f: dict) -> Report:
    """The Report of the three series' spreads (s): ``crash``, ``hang`` and ``monitor_dag``."""
    crash, hang, base = f["crash"], f["hang"], f["monitor_dag"]
    rows = [
        ("watchdog DAG, crash (SIGKILL)", crash["median"], crash["max"]),
        ("watchdog DAG, hung (SIGSTOP)", hang["median"], hang["max"]),
        (
            "baseline: monitor DAG triggered at the kill (its best case)",
            base["median"],
            base["max"],
        ),
        (
            "the same on its 5-minute schedule (+ 150 s mean wait)",
            cell(base["median"] + 150, 1),
            "",
        ),
    ]
    method = (
        "A fault sent to the Flask monitor's process group, then the time until `/health` "
        "answers 200 again; SIGKILL is a crash, SIGSTOP a hung service (alive, holding its "
        f"port, answering nothing) that has been up for at least {BOOT_TIMEOUT_S:g} s. "
        f"{crash['n']} faults each, after one warm-up."
    )
    targets = [
        Target(
            f"{fault}: watchdog median <= {TARGET_S:.0f} s",
            f"{x['median']:.2f} s",
            x["median"] <= TARGET_S,
        )
        for fault, x in (("crash", crash), ("hang", hang))
    ]
    table_ = table(("mechanism", "median (s)", "max (s)"), rows)
    return Report("relaunch_mttr", "Relaunch MTTR (embedded stack)", method, targets, [table_], f)


def main(argv: list[str] | None = None) -> int:
    parser = harness.Arguments(__doc__, {"relaunch_mttr": report})
    parser.add_argument("--kills", type=int, default=7)
    args = parser.parse_args(argv)
    with harness.embedded_stack() as stack:
        stack.wait_for_dags((WATCHDOG, MONITOR))
        # The watchdog finds nothing running at start and launches the service itself.
        wait_until(lambda: health(stack) == 200, 120, "the watchdog to launch Flask at start")
        crash = measure_watchdog(stack, args.kills, signal.SIGKILL)
        hang = measure_watchdog(stack, args.kills, signal.SIGSTOP)
        switch_off_watchdog(stack.client())
        samples = {
            "crash": crash,
            "hang": hang,
            "monitor_dag": measure_monitor_dag(stack, args.kills),
        }
    result = report({name: spread(series) for name, series in samples.items()})
    harness.publish(result, args.results, samples)
    return 0 if all(t.met for t in result.targets) else 1


if __name__ == "__main__":
    sys.exit(main())
