"""Monitor freshness: how long after Airflow's API shows a run change the monitor shows it.

    .venv/bin/python bench/monitor_freshness.py [--runs 5] [--under-load]

Measures, for training runs triggered through the REST API on an embedded stack (after one
warm-up run), the lag of the Flask monitor as deployed (gunicorn, shipped defaults, cached)
behind Airflow itself, against a baseline monitor without a cache (``MONITOR_CACHE_TTL=0``):
what reading through the monitor costs at all. Three tight pollers watch each run: Airflow
directly (latest run + task instances, the monitor's own two reads, read-only account) and
both monitors' ``/api/status``. A lag runs from the start of the direct poll that first
showed a state to the end of the first ``/api/status`` answer showing it or a later one.
Target: every run state change shown within TTL + 0.5 s. ``--under-load`` keeps wrk (32
connections) on the cached monitor meanwhile (results: monitor_freshness_under_load.*).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial

import requests
from harness import Report, Target, arguments, cell, embedded_stack, publish, rebuild, spread, table
from harness import wait_until_monitor_idle as monitor_idle
from monitor_load import TTL_S, ensure_wrk, pin_wrk, served_monitor

from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from airflow_rest import AirflowClient
from embedded.stack import EmbeddedStack
from testkit.runs import finished_run
from testkit.tasks import task_states
from testkit.waiting import wait_until

MARGIN_S = 0.5
UNDER_LOAD = "wrk -t2 -c32 on the cached monitor's /api/status"
VIEWS = {"cached": {}, "baseline": {"MONITOR_CACHE_TTL": "0"}}
RUN_RANK = {"queued": 1, "running": 2, "success": 3, "failed": 3}
# How far along a task is; states not named here (up_for_retry, deferred, ...) rank as running.
TASK_RANK = {None: 0, "none": 0, "scheduled": 1, "queued": 2, "running": 3} | dict.fromkeys(
    ("success", "failed", "skipped", "upstream_failed", "removed"), 4
)
Shown = tuple[str | None, str | None, dict[str, str | None]]  # run id, its state, task states


@dataclass
class Seen:
    """One poll: when it was asked and answered, and what it showed."""

    started: float
    ended: float
    run_id: str | None
    state: str | None
    tasks: dict[str, str | None]


@dataclass
class Poller:
    """Polls ``read`` in a thread until stopped; keeps each answer that differs from the last."""

    read: Callable[[], Shown]
    interval: float
    seen: list[Seen] = field(default_factory=list)
    polls: int = 0
    errors: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def finished(self, run_id: str) -> bool:
        last = self.seen[-1] if self.seen else None
        return last is not None and last.run_id == run_id and last.state in ("success", "failed")

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                shown = self.read()
            except Exception:
                self.errors += 1
                self._stop.wait(0.05)
                continue
            self.polls += 1
            last = self.seen[-1] if self.seen else None
            if last is None or (last.run_id, last.state, last.tasks) != shown:
                self.seen.append(Seen(started, time.perf_counter(), *shown))
            self._stop.wait(self.interval)


def read_airflow(client: AirflowClient) -> Shown:
    """The latest run and its task states, the monitor's own two reads."""
    run = client.latest_run(TRAINING)  # read first: its start bounds both reads
    if run is None:
        return None, None, {}
    return run["dag_run_id"], run["state"], task_states(client, TRAINING, run["dag_run_id"])


def read_monitor(session: requests.Session, url: str) -> Shown:
    response = session.get(f"{url}/api/status", timeout=30)
    response.raise_for_status()
    body = response.json()
    tasks = {t["task_id"]: t["state"] for t in body.get("tasks") or []}
    return body.get("run_id"), body.get("state"), tasks


def one_run(stack: EmbeddedStack, urls: dict[str, str], wrk: str | None) -> dict:
    """One training run watched by every poller (wrk loading the cached monitor, if given)."""
    admin = stack.client()
    load = None
    if wrk is not None:
        command = [wrk, "-t2", "-c32", "-d600s", "--timeout", "10s", f"{urls['cached']}/api/status"]
        load = subprocess.Popen(command, stdout=subprocess.DEVNULL, preexec_fn=pin_wrk)
    pollers = {"direct": Poller(partial(read_airflow, stack.client("viewer")), interval=0.0)}
    for view, url in urls.items():
        pollers[view] = Poller(
            partial(read_monitor, requests.Session(), url), 0.01 if view == "cached" else 0.0
        )
    try:
        time.sleep(1.0)  # every poller has seen the previous run
        run_id = admin.trigger(TRAINING, {})["dag_run_id"]
        wait_until(
            lambda: all(p.finished(run_id) for p in pollers.values()),
            300,
            f"run {run_id} seen finished by every poller",
            poll=0.05,
        )
    finally:
        for poller in pollers.values():
            poller.stop()
        if load is not None:
            load.terminate()
            load.wait(30)
    admin.wait_for_run(TRAINING, run_id, timeout=60)
    monitor_idle(admin)
    return {
        "run_id": run_id,
        "polls": {name: p.polls for name, p in pollers.items()},
        "poll_errors": {name: p.errors for name, p in pollers.items()},
        "transitions": transitions(run_id, {name: p.seen for name, p in pollers.items()}),
    }


def transitions(run_id: str, seen: dict[str, list[Seen]]) -> list[dict]:
    """Every state the direct poller saw the run or a task of it enter, with each monitor's lag."""
    origin, previous, events = seen["direct"][0].started, None, []
    for obs in seen["direct"]:
        if obs.run_id == run_id:
            same_run = previous is not None and previous.run_id == run_id
            if not same_run or previous.state != obs.state:
                events.append(("run", obs.state, None, obs.started))
            before = previous.tasks if same_run else {}
            for task, state in obs.tasks.items():
                if task not in before or before[task] != state:
                    events.append(("task", state, task, obs.started))
        previous = obs
    return [
        {
            "kind": kind,
            "what": state if kind == "run" else f"{task}:{state}",
            "at_s": round(at - origin, 3),
            **{f"{view}_lag_s": lag(kind, state, task, at, seen[view], run_id) for view in VIEWS},
        }
        for kind, state, task, at in events
    ]


def lag(
    kind: str, state: str | None, task: str | None, at: float, answers: list[Seen], run_id: str
) -> float | None:
    """Seconds until a monitor answer showed ``state`` or a later one; None if none did."""
    for obs in answers:
        if obs.run_id != run_id:
            continue
        if kind == "run":
            caught_up = RUN_RANK.get(obs.state, 0) >= RUN_RANK.get(state, 0)
        else:
            caught_up = task in obs.tasks and rank(obs.tasks[task]) >= rank(state)
        if caught_up:
            return round(obs.ended - at, 3)
    return None


def rank(state: str | None) -> int:
    return TASK_RANK.get(state, TASK_RANK["running"])


def summarize(runs: list[dict], under_load: bool) -> dict:
    """The lags of every run and task transition, by kind, of each monitor."""
    every = [t for r in runs for t in r["transitions"]]
    groups = {"run, all": [t for t in every if t["kind"] == "run"]}
    for state in sorted({t["what"] for t in groups["run, all"]}, key=RUN_RANK.get):
        groups[f"run -> {state}"] = [t for t in groups["run, all"] if t["what"] == state]
    groups["task, all"] = [t for t in every if t["kind"] == "task"]
    stats = {g: {v: spread(t[f"{v}_lag_s"] for t in ts) for v in VIEWS} for g, ts in groups.items()}
    return {"runs": len(runs), "ttl_s": TTL_S, "under_load": under_load, "stats": stats}


def report(f: dict) -> Report:
    """The lags against TTL + ``MARGIN_S``."""
    limit, stats = f["ttl_s"] + MARGIN_S, f["stats"]
    run = stats["run, all"]["cached"]

    def pair(figures: dict, key: str) -> str:
        return " / ".join(
            str(figures[v][key]) if key == "missed" else cell(figures[v].get(key)) for v in VIEWS
        )

    rows = [
        (g, x["cached"]["n"], *(pair(x, k) for k in ("median", "p90", "max")), pair(x, "missed"))
        for g, x in stats.items()
    ]
    header = "transitions|n|median s (cached / baseline)|p90 s|max s|never shown"
    return Report(
        name="monitor_freshness_under_load" if f["under_load"] else "monitor_freshness",
        title="Flask monitor freshness (gunicorn, real embedded Airflow behind)"
        + (f", under load ({UNDER_LOAD})" if f["under_load"] else ""),
        method=__doc__.split("\n\n", 2)[2].strip() + f"\n\n{f['runs']} runs; TTL {f['ttl_s']:g} s.",
        targets=[
            Target(
                f"run state change shown within TTL + {MARGIN_S} s = {limit:g} s",
                f"max {run.get('max')} s, median {run.get('median')} s over "
                f"{run['n'] + run['missed']} transitions",
                run["n"] > 0 and run["missed"] == 0 and run["max"] <= limit,
            )
        ],
        sections=[table(header.split("|"), rows)],
        figures=f,
    )


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--under-load", action="store_true", help="wrk -c32 on the cached monitor")
    args = parser.parse_args(argv)
    if args.rebuild:
        names = ("monitor_freshness", "monitor_freshness_under_load")
        return rebuild(dict.fromkeys(names, report), args.results)
    wrk = ensure_wrk() if args.under_load else None
    runs = []
    with embedded_stack() as stack, ExitStack() as monitors:
        finished_run(stack)  # warm-up: cold imports; the monitors have a run to show
        urls = {
            v: monitors.enter_context(served_monitor(stack, v, env)) for v, env in VIEWS.items()
        }
        for i in range(args.runs):
            runs.append(one_run(stack, urls, wrk))
            shown = [t for t in runs[-1]["transitions"] if t["kind"] == "run"]
            print(f"run {i + 1}: {shown}", flush=True)
    result = report(summarize(runs, args.under_load))
    result.samples = runs
    publish(result, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
