"""Monitor freshness: how long after Airflow's API shows a run change the monitor shows it.

    .venv/bin/python bench/monitor_freshness.py [--runs 5] [--under-load]

Boots the embedded stack, finishes one warm-up training run, then serves the monitor as
deployed (gunicorn via the process launcher) twice: with the shipped defaults (cached) and with
``MONITOR_CACHE_TTL=0`` (baseline: what reading through the monitor costs without a cache).
For each training run, triggered through the REST API as admin, three pollers run tightly
until the run has ended everywhere: Airflow directly (latest run + task instances, with the
monitor's read-only account), the cached monitor's ``/api/status`` and the baseline's.

A transition is the first direct poll that shows a run (or one of its tasks) in a new state;
its lag is the time from the *start* of that direct poll to the *end* of the first
``/api/status`` answer that shows that state or a later one (so both poll latencies count
against the monitor). Target: every run transition within TTL + 0.5 s.
Results in bench/results/monitor_freshness.{md,json,png}. ``--under-load`` keeps wrk (32
connections) on the cached monitor's ``/api/status`` during each run, and writes
monitor_freshness_under_load.* instead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from monitor_load import (
    MONITOR_DAG,
    MONITOR_DEFAULTS,
    TRAINING,
    UNCACHED,
    Monitor,
    ensure_wrk,
    finished_training_run,
    pin_wrk,
    served_monitor,
)
from support import RESULTS, embedded_stack, wait_until_monitor_idle, write_results

from airflow_rest import AirflowClient
from embedded.stack import EmbeddedStack

MARGIN_S = 0.5  # the target: the monitor shows a change within TTL + this
RUN_RANK = {"queued": 1, "running": 2, "success": 3, "failed": 3}
TASK_RANK = {
    None: 0,
    "none": 0,
    "scheduled": 1,
    "queued": 2,
    "running": 3,
    "success": 4,
    "failed": 4,
    "skipped": 4,
    "upstream_failed": 4,
    "removed": 4,
}
OTHER_TASK_RANK = 3  # up_for_retry, deferred, restarting...: past queued, not finished
VIEWS = ("cached", "baseline")


@dataclass
class Seen:
    """One poll's answer: when it was asked and answered, and what it showed."""

    started: float
    ended: float
    run_id: str | None
    state: str | None
    tasks: dict[str, str | None]


@dataclass
class Poller:
    """Polls ``read`` in a thread until stopped; keeps every answer that differs from the
    previous one (plus the first)."""

    name: str
    read: Callable[[], tuple[str | None, str | None, dict]]
    interval: float
    seen: list[Seen] = field(default_factory=list)
    polls: int = 0
    errors: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)

    def start(self) -> Poller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def latest(self) -> Seen | None:
        return self.seen[-1] if self.seen else None

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                run_id, state, tasks = self.read()
            except Exception:
                self.errors += 1
                time.sleep(0.05)
                continue
            ended = time.perf_counter()
            self.polls += 1
            last = self.latest()
            if last is None or (last.run_id, last.state, last.tasks) != (run_id, state, tasks):
                self.seen.append(Seen(started, ended, run_id, state, tasks))
            self._stop.wait(self.interval)


def direct_reader(client: AirflowClient) -> Callable[[], tuple]:
    """What Airflow says right now, with the same two reads the monitor makes. The run's
    state is the one read first, so ``started`` is a lower bound for both."""

    def read() -> tuple[str | None, str | None, dict]:
        run = client.latest_run(TRAINING)
        if run is None:
            return None, None, {}
        tasks = client.task_instances(TRAINING, run["dag_run_id"])
        return run["dag_run_id"], run["state"], {t["task_id"]: t["state"] for t in tasks}

    return read


def monitor_reader(monitor: Monitor) -> Callable[[], tuple]:
    session = requests.Session()

    def read() -> tuple[str | None, str | None, dict]:
        response = session.get(f"{monitor.url}/api/status", timeout=30)
        response.raise_for_status()
        body = response.json()
        tasks = {t["task_id"]: t["state"] for t in body.get("tasks") or []}
        return body.get("run_id"), body.get("state"), tasks

    return read


def one_run(
    stack: EmbeddedStack,
    monitors: dict[str, Monitor],
    viewer: AirflowClient,
    wrk: str | None = None,
) -> dict:
    """Trigger a training run with every poller running (and wrk loading the cached monitor
    if given); their observations of it."""
    admin = stack.client()
    load = None
    if wrk is not None:
        url = f"{monitors['cached'].url}/api/status"
        load = subprocess.Popen(
            [wrk, "-t2", "-c32", "-d600s", "--timeout", "10s", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=pin_wrk,
        )
    pollers = {
        "direct": Poller("direct", direct_reader(viewer), interval=0.0),
        "cached": Poller("cached", monitor_reader(monitors["cached"]), interval=0.01),
        "baseline": Poller("baseline", monitor_reader(monitors["baseline"]), interval=0.0),
    }
    for poller in pollers.values():
        poller.start()
    try:
        time.sleep(1.0)  # every poller has seen the previous run
        run_id = admin.trigger(TRAINING, {})["dag_run_id"]
        deadline = time.monotonic() + 300
        while not all(_finished(p.latest(), run_id) for p in pollers.values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} not seen finished by every poller")
            time.sleep(0.05)
    finally:
        for poller in pollers.values():
            poller.stop()
        if load is not None:
            load.terminate()
            load.wait(30)
    admin.wait_for_run(TRAINING, run_id, timeout=60)
    wait_until_monitor_idle(admin)
    return {
        "run_id": run_id,
        "polls": {name: p.polls for name, p in pollers.items()},
        "poll_errors": {name: p.errors for name, p in pollers.items()},
        "seen": {name: p.seen for name, p in pollers.items()},
    }


def _finished(seen: Seen | None, run_id: str) -> bool:
    return seen is not None and seen.run_id == run_id and seen.state in ("success", "failed")


def transitions(observation: dict) -> list[dict]:
    """Every run and task transition of the triggered run as the direct poller saw it, with
    the lag until each monitor showed it (or something later)."""
    run_id, seen = observation["run_id"], observation["seen"]
    direct, origin = seen["direct"], seen["direct"][0].started
    events = []
    previous: Seen | None = None
    for obs in direct:
        if obs.run_id != run_id:
            previous = obs
            continue
        if previous is None or previous.run_id != run_id or previous.state != obs.state:
            events.append({"kind": "run", "what": obs.state, "at": obs.started})
        before = previous.tasks if previous is not None and previous.run_id == run_id else {}
        for task, state in obs.tasks.items():
            if task not in before or before[task] != state:
                events.append({"kind": "task", "what": f"{task}:{state}", "at": obs.started})
        previous = obs
    out = []
    for event in events:
        lags = {view: _lag(event, seen[view], run_id) for view in VIEWS}
        out.append(
            {
                "kind": event["kind"],
                "what": event["what"],
                "at_s": round(event["at"] - origin, 3),
                **{f"{view}_lag_s": lags[view] for view in VIEWS},
            }
        )
    return out


def _lag(event: dict, views: list[Seen], run_id: str) -> float | None:
    """Seconds from the direct poll's start until a monitor answer showed the event's state
    or a later one of the same run; None if it never did."""
    for obs in views:
        if obs.run_id != run_id:
            continue
        if event["kind"] == "run":
            caught_up = RUN_RANK.get(obs.state, 0) >= RUN_RANK.get(event["what"], 0)
        else:
            task, _, state = event["what"].partition(":")
            state = None if state == "None" else state
            shown = obs.tasks.get(task, "absent")
            caught_up = shown != "absent" and _task_rank(shown) >= _task_rank(state)
        if caught_up:
            return round(obs.ended - event["at"], 3)
    return None


def _task_rank(state: str | None) -> int:
    return TASK_RANK.get(state, OTHER_TASK_RANK)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--under-load", action="store_true", help="wrk -c32 on the cached monitor meanwhile"
    )
    args = parser.parse_args(argv)
    wrk = ensure_wrk() if args.under_load else None
    load_before = round(os.getloadavg()[0], 2)
    observations = []
    with embedded_stack() as stack:
        stack.wait_for_dags((TRAINING, MONITOR_DAG))
        finished_training_run(stack)  # warm-up: cold imports; the monitors have a run to show
        with (
            served_monitor(stack, "cached", {}) as cached,
            served_monitor(stack, "baseline", UNCACHED) as baseline,
        ):
            monitors = {"cached": cached, "baseline": baseline}
            viewer = stack.client("viewer")
            for i in range(args.runs):
                observation = one_run(stack, monitors, viewer, wrk)
                observation["transitions"] = transitions(observation)
                observations.append(observation)
                runs = [t for t in observation["transitions"] if t["kind"] == "run"]
                print(
                    f"run {i + 1}: "
                    + ", ".join(
                        f"{t['what']} cached {t['cached_lag_s']} s / baseline "
                        f"{t['baseline_lag_s']} s"
                        for t in runs
                    ),
                    flush=True,
                )
    report = summarize(observations, load_before, args.under_load)
    write_report(report, "monitor_freshness_under_load" if args.under_load else "monitor_freshness")
    print(json.dumps(report["summary"], indent=2))
    return 0


def _stats(values: list[float | None]) -> dict:
    measured = sorted(v for v in values if v is not None)
    if not measured:
        return {"n": 0, "missed": len(values)}
    p90 = measured[min(len(measured) - 1, round(0.9 * (len(measured) - 1)))]
    return {
        "n": len(measured),
        "missed": len(values) - len(measured),
        "median_s": round(statistics.median(measured), 3),
        "p90_s": p90,
        "max_s": measured[-1],
        "min_s": measured[0],
    }


def summarize(observations: list[dict], load_before: float, under_load: bool = False) -> dict:
    ttl = float(MONITOR_DEFAULTS["CACHE_TTL"])
    limit = ttl + MARGIN_S
    every = [t for o in observations for t in o["transitions"]]
    stats = {
        kind: {
            view: _stats([t[f"{view}_lag_s"] for t in every if t["kind"] == kind]) for view in VIEWS
        }
        for kind in ("run", "task")
    }
    by_state = {
        state: {
            view: _stats(
                [t[f"{view}_lag_s"] for t in every if t["kind"] == "run" and t["what"] == state]
            )
            for view in VIEWS
        }
        for state in sorted({t["what"] for t in every if t["kind"] == "run"}, key=RUN_RANK.get)
    }
    run = stats["run"]["cached"]
    return {
        "settings": {
            "cache_ttl_s": ttl,
            "target_s": limit,
            "runs": len(observations),
            "cached": "shipped defaults",
            "baseline": "shipped defaults + MONITOR_CACHE_TTL=0",
            "cached_under_wrk_load": "wrk -t2 -c32 on /api/status" if under_load else None,
            "load_average_1m_before": load_before,
        },
        "runs": [
            {
                "run_id": o["run_id"],
                "polls": o["polls"],
                "poll_errors": o["poll_errors"],
                "transitions": o["transitions"],
            }
            for o in observations
        ],
        "stats": stats,
        "run_by_state": by_state,
        "summary": {
            "ttl_s": ttl,
            "target_s": limit,
            "run_transitions": run["n"] + run["missed"],
            "run_lag_max_s": run.get("max_s"),
            "run_lag_median_s": run.get("median_s"),
            "run_lag_max_baseline_s": stats["run"]["baseline"].get("max_s"),
            "run_lag_median_baseline_s": stats["run"]["baseline"].get("median_s"),
            "task_lag_max_s": stats["task"]["cached"].get("max_s"),
            "task_lag_median_s": stats["task"]["cached"].get("median_s"),
            "meets_target": run["n"] > 0 and run["missed"] == 0 and run["max_s"] <= limit,
            "run_lag_max_over_target": round(run["max_s"] / limit, 3) if run["n"] else None,
        },
    }


def write_report(report: dict, name: str) -> None:
    s, cfg, stats = report["summary"], report["settings"], report["stats"]

    def row(label: str, figures: dict) -> str:
        c, b = figures["cached"], figures["baseline"]
        if not c["n"]:
            return f"| {label} | - | - | - | - | - |"
        return (
            f"| {label} | {c['n']} | {c['median_s']:.2f} / {b.get('median_s', float('nan')):.2f} "
            f"| {c['p90_s']:.2f} / {b.get('p90_s', float('nan')):.2f} "
            f"| {c['max_s']:.2f} / {b.get('max_s', float('nan')):.2f} "
            f"| {c['missed']} / {b['missed']} |"
        )

    rows = [row("run, all", stats["run"])]
    rows += [row(f"run -> {state}", f) for state, f in report["run_by_state"].items()]
    rows.append(row("task, all", stats["task"]))
    per_run = "\n".join(
        f"| {i + 1} | {t['what']} | {t['at_s']:.2f} | {t['cached_lag_s']} | {t['baseline_lag_s']} |"
        for i, r in enumerate(report["runs"])
        for t in r["transitions"]
        if t["kind"] == "run"
    )
    plot = plot_results(report, name)
    verdict = "**met**" if s["meets_target"] else "**NOT met**"
    load = cfg["cached_under_wrk_load"]
    write_results(
        name,
        report,
        "# Flask monitor freshness (gunicorn, real embedded Airflow behind)"
        + (f", cached monitor under load ({load})" if load else "")
        + "\n\n"
        f"{cfg['runs']} training runs triggered through the REST API, each watched by three "
        "tight pollers: Airflow directly (latest run + task instances), the cached monitor "
        f"({cfg['cached']}, TTL {cfg['cache_ttl_s']:g} s) and the baseline monitor "
        f"({cfg['baseline']}). Lag: start of the direct poll that first showed a state -> end "
        "of the first `/api/status` answer showing it or a later state. "
        f"Load average before: {cfg['load_average_1m_before']}.\n\n"
        "| target | measured | |\n| --- | --- | --- |\n"
        f"| run state change shown within TTL + 0.5 s = {s['target_s']:g} s | max "
        f"{s['run_lag_max_s']} s, median {s['run_lag_median_s']} s over "
        f"{s['run_transitions']} transitions ({s['run_lag_max_over_target']} of the limit) "
        f"| {verdict} |\n\n"
        "| transitions | n | median s (cached / baseline) | p90 s | max s | never shown |\n"
        f"| --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n\n"
        "The baseline's lag is what reading through the monitor costs without a cache (its "
        "Airflow round + the poll gaps); the cached monitor adds up to one TTL (+ one round) "
        "to it.\n\n"
        "| run | transition | at (s after first poll) | cached lag (s) | baseline lag (s) |\n"
        f"| --- | --- | --- | --- | --- |\n{per_run}\n\n"
        f"![freshness lags]({plot.name})\n",
    )


def plot_results(report: dict, name: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ttl, limit = report["settings"]["cache_ttl_s"], report["settings"]["target_s"]
    every = [t for r in report["runs"] for t in r["transitions"]]
    groups = [
        ("run", [t for t in every if t["kind"] == "run"]),
        ("task", [t for t in every if t["kind"] == "task"]),
    ]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    colors = {"cached": "tab:blue", "baseline": "tab:gray"}
    ticks = []
    for i, (kind, items) in enumerate(groups):
        for j, view in enumerate(VIEWS):
            x = i * 3 + j
            lags = [t[f"{view}_lag_s"] for t in items if t[f"{view}_lag_s"] is not None]
            jitter = [x + 0.25 * ((k * 7919) % 11 / 10 - 0.5) for k in range(len(lags))]
            ax.scatter(jitter, lags, s=14, alpha=0.7, color=colors[view])
            ticks.append((x, f"{kind}\n{view}"))
    ax.axhline(ttl, color="tab:orange", linewidth=0.8, linestyle="--", label=f"TTL {ttl:g} s")
    ax.axhline(limit, color="tab:red", linewidth=0.8, label=f"target TTL + 0.5 = {limit:g} s")
    ax.set_xticks([t[0] for t in ticks], [t[1] for t in ticks])
    ax.set_ylabel("lag behind Airflow's API (s)")
    load = report["settings"]["cached_under_wrk_load"]
    ax.set_title("When /api/status shows a state change" + (f" (cached: {load})" if load else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    sys.exit(main())
