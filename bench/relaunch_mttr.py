"""Relaunch MTTR: crash or hang the Flask monitor, time until `/health` answers 200 again.

    .venv/bin/python bench/relaunch_mttr.py [--kills 7]

Boots the embedded stack with the shipped settings, in which `ad_click_flask_watchdog`
(continuous, waiting in the triggerer) keeps the service up. Two faults, each sent to the
whole gunicorn process group (master and workers):

* crash: SIGKILL, as a crash or the OOM killer would do;
* hang: SIGSTOP, so the processes live on, holding the port, and answer nothing, as in a
  deadlock. The watchdog must see the silence and the launcher replace the service
  (SIGTERM, SIGKILL after its grace period, a new master).

Baseline in the same run: the watchdog is switched off and the five-minute `ad_click_monitor`
DAG is triggered right at each kill, i.e. that DAG's best case (a scheduled check would first
wait for its next tick: 150 s on average on top). Target: watchdog median <= 10 s over >= 5
kills, for the crash and for the hang. Results in bench/results/relaunch_mttr.{md,json}.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable

from harness import embedded_stack, write_results

from embedded.stack import EmbeddedStack
from testkit.flask_service import health
from testkit.waiting import wait_until
from testkit.watchdog import WATCHDOG, switch_off_watchdog, watchdog_waiting

MONITOR = "ad_click_monitor"
TARGET_S = 10.0
CRON_MEAN_WAIT_S = 150.0


def fault_and_time(
    stack: EmbeddedStack, signum: int, recover: Callable[[], None] = lambda: None
) -> float:
    """``signum`` to the service's process group; seconds until /health answers 200 again."""
    os.killpg(stack.flask_pid(), signum)
    faulted = time.perf_counter()
    recover()
    wait_until(lambda: health(stack) == 200, 120, "/health to answer again", poll=0.02)
    return round(time.perf_counter() - faulted, 3)


def measure_watchdog(stack: EmbeddedStack, kills: int, signum: int) -> list[float]:
    client = stack.client()
    samples = []
    name = signal.Signals(signum).name
    for i in range(kills + 1):  # the first one warms up the relaunch path
        wait_until(lambda: health(stack) == 200 and watchdog_waiting(client), 120, "watchdog ready")
        seconds = fault_and_time(stack, signum)
        print(f"watchdog {name} {i}: {seconds:.2f} s{' (warm-up)' if i == 0 else ''}", flush=True)
        if i:
            samples.append(seconds)
    return samples


def measure_monitor_dag(stack: EmbeddedStack, kills: int) -> list[float]:
    client = stack.client()
    samples = []
    for i in range(kills):
        wait_until(lambda: health(stack) == 200, 60, "Flask up")
        seconds = fault_and_time(stack, signal.SIGKILL, recover=lambda: client.trigger(MONITOR, {}))
        run = client.latest_run(MONITOR)
        client.wait_for_run(MONITOR, run["dag_run_id"], timeout=120)
        print(f"monitor DAG kill {i}: {seconds:.2f} s", flush=True)
        samples.append(seconds)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=7)
    args = parser.parse_args(argv)
    with embedded_stack() as stack:
        stack.wait_for_dags((WATCHDOG, MONITOR))
        # The watchdog finds nothing running at start and launches the service itself.
        wait_until(lambda: health(stack) == 200, 120, "the watchdog to launch Flask at start")
        watchdog = measure_watchdog(stack, args.kills, signal.SIGKILL)
        hung = measure_watchdog(stack, args.kills, signal.SIGSTOP)
        switch_off_watchdog(stack.client())
        baseline = measure_monitor_dag(stack, args.kills)
    report = summarize(watchdog, hung, baseline)
    write_report(report)
    print(report["summary"])
    return 0 if report["summary"]["meets_target"] else 1


def summarize(watchdog: list[float], hung: list[float], baseline: list[float]) -> dict:
    median = statistics.median(watchdog)
    hung_median = statistics.median(hung)
    base = statistics.median(baseline)
    return {
        "samples": {
            "watchdog_s": watchdog,
            "watchdog_hung_s": hung,
            "monitor_dag_triggered_at_kill_s": baseline,
        },
        "summary": {
            "kills": len(watchdog),
            "watchdog_median_s": median,
            "watchdog_max_s": max(watchdog),
            "hung_median_s": hung_median,
            "hung_max_s": max(hung),
            "hung_over_crash": round(hung_median / median, 3),
            "monitor_dag_best_case_median_s": base,
            "monitor_dag_scheduled_expected_s": round(base + CRON_MEAN_WAIT_S, 1),
            "watchdog_over_monitor_dag_best_case": round(median / base, 3),
            "target_s": TARGET_S,
            "meets_target": median <= TARGET_S and hung_median <= TARGET_S,
        },
    }


def write_report(report: dict) -> None:
    s = report["summary"]
    samples = report["samples"]
    rows = "\n".join(
        f"| {i + 1} | {w:.2f} | {h:.2f} | {b:.2f} |"
        for i, (w, h, b) in enumerate(
            zip(
                samples["watchdog_s"],
                samples["watchdog_hung_s"],
                samples["monitor_dag_triggered_at_kill_s"],
                strict=False,
            )
        )
    )
    write_results(
        "relaunch_mttr",
        report,
        "# Relaunch MTTR (embedded stack)\n\n"
        "A fault sent to the Flask monitor's process group, then the time until `/health` "
        "answers 200 again; SIGKILL is a crash, SIGSTOP a hung service (alive, holding its "
        f"port, answering nothing). {s['kills']} faults each, after one warm-up.\n\n"
        "| mechanism | median (s) | max (s) | target |\n| --- | --- | --- | --- |\n"
        f"| watchdog DAG, crash (SIGKILL) | {s['watchdog_median_s']:.2f} "
        f"| {s['watchdog_max_s']:.2f} | <= {s['target_s']:.0f} s |\n"
        f"| watchdog DAG, hung (SIGSTOP) | {s['hung_median_s']:.2f} "
        f"| {s['hung_max_s']:.2f} | <= {s['target_s']:.0f} s |\n"
        "| baseline: monitor DAG triggered at the kill (its best case) "
        f"| {s['monitor_dag_best_case_median_s']:.2f} | | |\n"
        "| monitor DAG on its 5-minute schedule (expected: + 150 s mean wait) "
        f"| {s['monitor_dag_scheduled_expected_s']:.1f} | | |\n"
        f"| ratio watchdog / baseline | {s['watchdog_over_monitor_dag_best_case']:.3f} | | |\n"
        f"| ratio hung / crash | {s['hung_over_crash']:.3f} | | |\n\n"
        "| fault | crash (s) | hung (s) | baseline (s) |\n| --- | --- | --- | --- |\n"
        f"{rows}\n",
    )


if __name__ == "__main__":
    sys.exit(main())
