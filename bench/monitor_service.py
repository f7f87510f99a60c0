"""Flask monitor, served as deployed on the embedded stack: throughput, the history page,
freshness and relaunch time.

    .venv/bin/python bench/monitor_service.py [--measure load history freshness mttr] [--under-load]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial

import harness
import requests
from harness import Report, Target, Wrk, cell, spread, table

from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from airflow_rest import AirflowClient
from embedded.stack import EmbeddedStack
from flask_launcher.health import BOOT_TIMEOUT_S
from flask_launcher.process import process_age
from monitor.config import DEFAULTS as MONITOR_DEFAULTS
from testkit.flask_service import flask_pid, health, served_monitor
from testkit.local_http import JSONHandler, LocalHTTPServer
from testkit.runs import failing_conf, finished_run
from testkit.tasks import task_states
from testkit.waiting import wait_until
from testkit.watchdog import WATCHDOG, switch_off_watchdog, watchdog_waiting

TTL_S = float(MONITOR_DEFAULTS["CACHE_TTL"])
WARM_UP_S = 2  # before the measured runs: token, templates, connections, finished runs read
VARIANTS = {"cached": {}, "baseline": {"MONITOR_CACHE_TTL": "0"}}  # instance -> its settings
ROUTES, HISTORY_ROUTES = ("/health", "/api/status"), ("/api/status", "/history")
THROUGHPUT_RATIO_TARGET, P99_TARGET_MS, ROUNDS_PER_WINDOW_TARGET = 10.0, 50.0, 1.0
# /history once its runs are known: one dagRuns call per window (login renewals aside).
HISTORY_CALLS_PER_WINDOW_TARGET, FRESHNESS_MARGIN_S = 1.5, 0.5
RUN_RANK = {"queued": 1, "running": 2, "success": 3, "failed": 3}
# How far along a task is; states not named here (up_for_retry, deferred, ...) rank as running.
TASK_RANK = {None: 0, "none": 0, "scheduled": 1, "queued": 2, "running": 3} | dict.fromkeys(
    ("success", "failed", "skipped", "upstream_failed", "removed"), 4
)
WRK_OPTIONS = {"threads": 2, "connections": 32}  # wrk on a 2-core machine
MTTR_TARGET_S = 10.0


def in_turn(wrk: Wrk, rounds: int, runs: dict[object, tuple[str, Callable]]) -> dict:
    """``alternating`` of ``{key: (url, run)}``, a second apart, after a warm-up on each URL."""
    for url, _ in runs.values():
        wrk.run(url, WARM_UP_S)
    trials = {key: lambda run=run: time.sleep(1) or run() for key, (_, run) in runs.items()}
    return harness.alternating(trials, rounds, warm_up=False)


def counters(url: str, kinds: list[tuple[str, str]]) -> list[float]:
    """Per (metric, label) of ``kinds``, the sum of the monitor's ``/metrics`` samples."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    samples = [line.rpartition(" ") for line in text.splitlines() if line and line[0] != "#"]
    return [sum(float(v) for k, _, v in samples if all(n in k for n in kind)) for kind in kinds]


def measure_rounds(wrk: Wrk, url: str, route: str) -> dict:
    """One wrk run on ``route``, with the Airflow rounds the monitor's /metrics counted."""
    call = 'call="snapshot"' if route == "/api/status" else 'call="health"'
    kinds = [
        ("monitor_airflow_calls_total", call),
        ("monitor_http_requests_total", f'endpoint="{route}"'),
    ]
    before, result, after = counters(url, kinds), wrk.run(f"{url}{route}"), counters(url, kinds)
    rounds, served = (a - b for a, b in zip(after, before, strict=True))
    result["upstream_rounds_per_request"] = rounds / max(served, 1)
    result["upstream_rounds_per_ttl_window"] = rounds * TTL_S / result["duration_s"]
    return result


class CountingProxy(LocalHTTPServer):
    """Forwards every request to Airflow and counts them: what the monitor really costs it."""

    def __init__(self, upstream: str) -> None:
        self.calls = 0
        lock, session, proxy = threading.Lock(), requests.Session(), self

        class Handler(JSONHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                with lock:
                    proxy.calls += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                url, kept = f"{upstream}{self.path}", ("Content-Type", "Location")
                answer = session.request(
                    self.command, url, data=body, headers=headers, timeout=30, allow_redirects=False
                )
                self.send_response(answer.status_code)
                for key in (k for k in kept if k in answer.headers):
                    self.send_header(key, answer.headers[key])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PATCH = forward

        super().__init__(Handler)


def over_rounds(runs: list[dict]) -> dict:
    """Medians over the rounds, and the errors."""
    medians = {k: spread((r[k] for r in runs), 4).get("median") for k in runs[0]}
    return {**medians, "errors": sum(r["errors"] for r in runs)}


def monitors(stack: EmbeddedStack, started: ExitStack) -> dict[str, str]:
    """A monitor per ``VARIANTS``, for as long as ``started``: their URLs."""
    serve = lambda name, env: served_monitor(stack, stack.home / name, **env)  # noqa: E731
    return {name: started.enter_context(serve(name, env)) for name, env in VARIANTS.items()}


def measure_load(wrk: Wrk, stack: EmbeddedStack, rounds: int) -> tuple[dict, dict]:
    """Figures and samples of /health and /api/status of each variant."""
    with ExitStack() as started:
        urls = monitors(stack, started)
        for name, url in urls.items():  # each shows the finished run and its tasks
            if len(requests.get(f"{url}/api/status", timeout=30).json().get("tasks") or []) < 2:
                raise RuntimeError(f"the {name} monitor shows no finished run")
        pairs = [(v, r, url) for r in ROUTES for v, url in urls.items()]
        runs = {(v, r): (f"{url}{r}", partial(measure_rounds, wrk, url, r)) for v, r, url in pairs}
        samples = in_turn(wrk, rounds, runs)
    routes = {r: {v: over_rounds(samples[v, r]) for v in VARIANTS} for r in ROUTES}
    return {"routes": routes}, {f"{v} {r}": runs for (v, r), runs in samples.items()}


def measure_history(wrk: Wrk, stack: EmbeddedStack, rounds: int) -> tuple[dict, dict]:
    """Figures and samples of /api/status and /history, every REST call counted."""
    for conf in (failing_conf(), {}, {}):
        finished_run(stack, conf)
    harness.wait_until_monitor_idle(stack.client())
    proxy = CountingProxy(stack.api_url)

    def calls(url: str) -> dict:
        before, result = proxy.calls, wrk.run(url)
        per_window = (proxy.calls - before) * TTL_S / result["duration_s"]
        return {**result, "rest_calls_per_ttl_window": per_window}

    try:
        with served_monitor(stack, stack.home / "history", MONITOR_AIRFLOW_URL=proxy.url) as url:
            shown = requests.get(f"{url}/history", timeout=60).text.count('class="run ')
            expected = min(len(stack.client().runs(TRAINING, limit=100)), 20)
            if shown != expected:
                raise RuntimeError(f"/history shows {shown} runs, Airflow has {expected}")
            runs = {r: (f"{url}{r}", partial(calls, f"{url}{r}")) for r in HISTORY_ROUTES}
            samples = in_turn(wrk, rounds, runs)
    finally:
        proxy.stop()
    return {"runs_shown": shown, "routes": {r: over_rounds(samples[r]) for r in samples}}, samples


def read_airflow(client: AirflowClient) -> tuple:
    """The latest run and its task states, the monitor's own two reads."""
    run = client.latest_run(TRAINING)  # read first: its start bounds both reads
    if run is None:
        return None, None, {}
    return run["dag_run_id"], run["state"], task_states(client, TRAINING, run["dag_run_id"])


def read_monitor(session: requests.Session, url: str) -> tuple:
    body = session.get(f"{url}/api/status", timeout=30).json()
    tasks = {t["task_id"]: t["state"] for t in body.get("tasks") or []}
    return body.get("run_id"), body.get("state"), tasks


def watched_run(stack: EmbeddedStack, urls: dict[str, str], load: Wrk | None) -> list[dict]:
    """One training run watched by every poller: each transition Airflow showed, with lags."""
    admin = stack.client()
    command = load and load.command(f"{urls['cached']}/api/status", 600)
    pin = harness.pin_wrk
    wrk = command and subprocess.Popen(command, stdout=subprocess.DEVNULL, preexec_fn=pin)
    pollers = {"direct": harness.Sampler(partial(read_airflow, stack.client("viewer")), 0.0)}
    for view, url in urls.items():
        read = partial(read_monitor, requests.Session(), url)
        pollers[view] = harness.Sampler(read, 0.01 if view == "cached" else 0.0)
    try:
        time.sleep(1.0)  # every poller has seen the previous run
        run_id = admin.trigger(TRAINING, {})["dag_run_id"]
        ends = ((run_id, "success"), (run_id, "failed"))
        everyone = lambda: all(p.seen and p.seen[-1][2][:2] in ends for p in pollers.values())  # noqa: E731
        wait_until(everyone, 300, f"run {run_id} seen finished by every poller", poll=0.05)
    finally:
        for poller in pollers.values():
            poller.stop()
        if wrk:
            wrk.terminate()
            wrk.wait(30)
    harness.wait_until_monitor_idle(admin)
    events, previous = [], (None, None, {})
    for started, _, (run, state, tasks) in pollers["direct"].seen:
        if run == run_id:
            before = previous[2] if previous[0] == run_id else {}
            if previous[:2] != (run, state):
                events.append(("run", state, None, started))
            events += [("task", s, t, started) for t, s in tasks.items() if before.get(t, 0) != s]
        previous = (run, state, tasks)
    lags = lambda *event: {f"{v}_lag_s": lag(*event, run_id, pollers[v].seen) for v in urls}  # noqa: E731
    return [{"kind": e[0], "what": e[1], **lags(*e)} for e in events]


def lag(kind: str, state: str, task: str | None, at: float, run_id: str, answers: list) -> float:
    """Seconds until a monitor answer showed ``state`` or a later one; None if none did."""
    rank = lambda s: RUN_RANK.get(s, 0) if kind == "run" else TASK_RANK.get(s, 3)  # noqa: E731
    for _, ended, (run, run_state, tasks) in answers:
        shown = run_state if kind == "run" else tasks.get(task)
        if run == run_id and (kind == "run" or task in tasks) and rank(shown) >= rank(state):
            return round(ended - at, 3)
    return None


def measure_freshness(stack: EmbeddedStack, runs: int, load: Wrk | None) -> tuple[dict, list]:
    """Figures and samples: the lags of each monitor behind Airflow, by transition."""
    with ExitStack() as started:
        urls = monitors(stack, started)
        samples = [watched_run(stack, urls, load) for _ in range(runs)]
    every = [t for r in samples for t in r]
    groups = {"run, all": [t for t in every if t["kind"] == "run"]}
    for state in sorted({t["what"] for t in groups["run, all"]}, key=RUN_RANK.get):
        groups[f"run -> {state}"] = [t for t in groups["run, all"] if t["what"] == state]
    groups["task, all"] = [t for t in every if t["kind"] == "task"]
    stats = {g: {v: spread(t[f"{v}_lag_s"] for t in ts) for v in urls} for g, ts in groups.items()}
    return {"runs": runs, "under_load": load is not None, "stats": stats}, samples


def recovery(stack: EmbeddedStack, signum: int, recover: Callable = lambda: None) -> float:
    """``signum`` to the service's process group; seconds until /health answers 200 again."""
    os.killpg(flask_pid(stack), signum)
    faulted = time.perf_counter()
    recover()
    wait_until(lambda: health(stack) == 200, 120, "/health to answer again", poll=0.02)
    return round(time.perf_counter() - faulted, 3)


def watchdog_recoveries(stack: EmbeddedStack, kills: int, signum: int) -> list[float]:
    """``kills`` recoveries by the watchdog, after one that warms up the relaunch path."""
    client, samples = stack.client(), []
    for _ in range(kills + 1):
        wait_until(lambda: health(stack) == 200 and watchdog_waiting(client), 120, "watchdog ready")
        if signum == signal.SIGSTOP:
            # Silent within BOOT_TIMEOUT_S of its start, a service may still be booting and is
            # given that long; a hang is of a service that has been serving.
            booted = lambda: process_age(flask_pid(stack)) >= BOOT_TIMEOUT_S  # noqa: E731
            wait_until(booted, BOOT_TIMEOUT_S + 10, "the service to be past its boot window")
        samples.append(recovery(stack, signum))
    return samples[1:]


def measure_mttr(stack: EmbeddedStack, kills: int) -> tuple[dict, dict]:
    """Recoveries by the watchdog, then (switched off) by a monitor DAG run at each kill."""
    stack.wait_for_dags((WATCHDOG, MONITOR))
    wait_until(lambda: health(stack) == 200, 120, "the watchdog to launch Flask")
    samples = {"crash": watchdog_recoveries(stack, kills, signal.SIGKILL)}
    samples["hang"] = watchdog_recoveries(stack, kills, signal.SIGSTOP)
    client, samples["monitor_dag"] = stack.client(), []
    switch_off_watchdog(client)
    for _ in range(kills):
        wait_until(lambda: health(stack) == 200, 60, "Flask up")
        trigger = partial(client.trigger, MONITOR, {})
        samples["monitor_dag"].append(recovery(stack, signal.SIGKILL, trigger))
        client.wait_for_run(MONITOR, client.latest_run(MONITOR)["dag_run_id"], timeout=120)
    return {name: spread(series) for name, series in samples.items()}, samples


def method(f: dict, what: str) -> str:
    return (
        f"{what} wrk `{f['wrk']}` pinned to one CPU, {f['rounds']} alternating round(s) per "
        f"instance and route (medians shown), after a {WARM_UP_S} s warm-up each; TTL "
        f"{f['cache_ttl_s']:g} s; load average before: {f['load_average_1m_before']}."
    )


def load_report(f: dict) -> Report:
    """monitor_load: each variant's figures per route, the cached one's ratios, the targets."""
    routes, rows = f["routes"], []
    figures = [(f"{q} ms", f"{q}_ms", 1) for q in ("p50", "p90", "p99")]
    figures.append(("Airflow rounds / request", "upstream_rounds_per_request", 4))
    for route, by in routes.items():
        rps = [by[v]["requests_per_s"] for v in VARIANTS]
        ratio = f"**{rps[0] / rps[1]:.1f}x**"
        rows.append((f"`{route}`", "req/s", *(f"{x:.0f}" for x in rps), ratio))
        rows += [("", label, *(cell(by[v][k], d) for v in VARIANTS), "") for label, k, d in figures]
        rows.append(("", "errors", *(by[v]["errors"] for v in VARIANTS), ""))
    status, cached = routes["/api/status"], [routes[r]["cached"] for r in ROUTES]
    rps = [status[v]["requests_per_s"] for v in VARIANTS]
    per_window = max(x["upstream_rounds_per_ttl_window"] for x in cached)
    p99s = ", ".join(f"`{r}` {routes[r]['cached']['p99_ms']:.1f} ms" for r in ROUTES)
    ratio, p99_met = rps[0] / rps[1], all(x["p99_ms"] <= P99_TARGET_MS for x in cached)
    goals = (
        f"`/api/status` req/s >= {THROUGHPUT_RATIO_TARGET:g}x the TTL=0 baseline",
        f"p99 <= {P99_TARGET_MS:g} ms (cached)",
        f"<= {ROUNDS_PER_WINDOW_TARGET:g} Airflow round per TTL window",
    )
    measured = (f"{rps[0]:.0f} vs {rps[1]:.0f} = {ratio:.1f}x", p99s, f"{per_window:.2f}")
    met = (ratio >= THROUGHPUT_RATIO_TARGET, p99_met, per_window <= ROUNDS_PER_WINDOW_TARGET)
    targets = list(map(Target, goals, measured, met))
    what = (
        "Two instances read the same Airflow with the viewer account: *cached*, the shipped "
        "defaults (1 gevent worker, up to 1000 connections), and *baseline*, the same with "
        "`MONITOR_CACHE_TTL=0` (no cache; requests arriving while a round is in flight "
        "still share it)."
    )
    sections = [
        table("route | figure | cached | baseline (TTL 0) | cached / baseline", rows),
        "Airflow rounds are the monitor's own `monitor_airflow_calls_total` over its "
        "`monitor_http_requests_total`, from `/metrics` before and after each run.",
    ]
    title = "Flask monitor throughput (gunicorn, real embedded Airflow behind)"
    return Report("monitor_load", title, method(f, what), targets, sections, f)


def history_report(f: dict) -> Report:
    """monitor_history: each route's req/s, p99 and REST calls per TTL window."""
    page, status, calls = (
        f["routes"]["/history"],
        f["routes"]["/api/status"],
        "rest_calls_per_ttl_window",
    )
    shown = (("requests_per_s", 0), ("p99_ms", 1), (calls, 2))
    rows = [
        (f"`{r}`", *(cell(x[k], d) for k, d in shown), x["errors"]) for r, x in f["routes"].items()
    ]
    what = (
        f"A monitor with the shipped defaults shows the last {f['runs_shown']} runs (one "
        "failed) and reaches Airflow through a proxy that counts every REST call (login, "
        "dagRuns, task instances, XCom, logs); one route at a time."
    )
    targets = [
        Target(
            f"`/history` p99 <= {P99_TARGET_MS:g} ms",
            f"{page['p99_ms']:.1f} ms (`/api/status` beside it: {status['p99_ms']:.1f} ms)",
            page["p99_ms"] <= P99_TARGET_MS,
        ),
        Target(
            f"`/history` REST calls per TTL window <= {HISTORY_CALLS_PER_WINDOW_TARGET}",
            f"{page[calls]:.2f} (`/api/status`: {status[calls]:.2f})",
            page[calls] <= HISTORY_CALLS_PER_WINDOW_TARGET,
        ),
    ]
    sections = [table(("route", "req/s", "p99 ms", "REST calls / TTL window", "errors"), rows)]
    title = "Flask monitor: the history page under load"
    return Report("monitor_history", title, method(f, what), targets, sections, f)


def freshness_report(f: dict) -> Report:
    """monitor_freshness[_under_load]: the lags against TTL + ``FRESHNESS_MARGIN_S``."""
    limit, run = f["cache_ttl_s"] + FRESHNESS_MARGIN_S, f["stats"]["run, all"]["cached"]

    def pair(x: dict, key: str) -> str:
        return " / ".join(str(x[v][key]) if key == "missed" else cell(x[v].get(key)) for v in x)

    rows = [
        (group, x["cached"]["n"], *(pair(x, k) for k in ("median", "p90", "max", "missed")))
        for group, x in f["stats"].items()
    ]
    load = f", under load (wrk `{f['wrk']}` on the cached monitor)" if f["under_load"] else ""
    header = "transitions | n | median s (cached / baseline) | p90 s | max s | never shown"
    what = (
        f"{f['runs']} training runs, each watched by three tight pollers: Airflow directly "
        "(latest run + task instances, the monitor's own two reads, read-only account), the "
        "cached monitor (shipped defaults) and the baseline (TTL 0). A lag runs from the start "
        "of the direct poll that first showed a state to the end of the first `/api/status` "
        f"answer showing it or a later one. TTL {f['cache_ttl_s']:g} s."
    )
    target = Target(
        f"run state change shown within TTL + {FRESHNESS_MARGIN_S} s = {limit:g} s",
        f"max {run.get('max')} s, median {run.get('median')} s over "
        f"{run['n'] + run['missed']} transitions",
        run["n"] > 0 and run["missed"] == 0 and run["max"] <= limit,
    )
    name = "monitor_freshness_under_load" if f["under_load"] else "monitor_freshness"
    title = "Flask monitor freshness (gunicorn, real embedded Airflow behind)" + load
    return Report(name, title, what, [target], [table(header, rows)], f)


def mttr_report(f: dict) -> Report:
    """relaunch_mttr: the spreads (s) of ``crash``, ``hang`` and ``monitor_dag``."""
    crash, hang, base = f["crash"], f["hang"], f["monitor_dag"]
    rows = [
        ("watchdog DAG, crash (SIGKILL)", crash["median"], crash["max"]),
        ("watchdog DAG, hung (SIGSTOP)", hang["median"], hang["max"]),
        (
            "baseline: monitor DAG triggered at the kill (its best case)",
            *(base[k] for k in ("median", "max")),
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
    goal = f"watchdog median <= {MTTR_TARGET_S:.0f} s"
    targets = [
        Target(f"{fault}: {goal}", f"{x['median']:.2f} s", x["median"] <= MTTR_TARGET_S)
        for fault, x in (("crash", crash), ("hang", hang))
    ]
    sections = [table(("mechanism", "median (s)", "max (s)"), rows)]
    return Report("relaunch_mttr", "Relaunch MTTR (embedded stack)", method, targets, sections, f)


# --measure -> its report; in this order, since mttr switches the watchdog off
REPORTS = {"load": load_report, "history": history_report, "freshness": freshness_report}
REPORTS["mttr"] = mttr_report
RESULTS = {f"monitor_{name}": REPORTS[name] for name in ("load", "history", "freshness")}
RESULTS |= {"monitor_freshness_under_load": freshness_report, "relaunch_mttr": mttr_report}


def main(argv: list[str] | None = None) -> int:
    parser = harness.Arguments(__doc__, RESULTS)
    parser.add_argument("--measure", nargs="+", choices=list(REPORTS), default=["load", "history"])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating repeats of each run")
    parser.add_argument("--runs", type=int, default=5, help="training runs watched (freshness)")
    parser.add_argument("--under-load", action="store_true", help="freshness with wrk running")
    parser.add_argument("--kills", type=int, default=7, help="faults of each kind (mttr)")
    args = parser.parse_args(argv)
    wrk = Wrk(**WRK_OPTIONS, duration=args.duration)
    settings = {"wrk": " ".join(wrk.command("", args.duration)[1:4]), "rounds": args.rounds}
    settings |= {"cache_ttl_s": TTL_S, "load_average_1m_before": round(os.getloadavg()[0], 2)}
    with harness.embedded_stack() as stack:
        # A finished run for /api/status to show, and the monitor DAG run it triggers over too.
        if finished_run(stack)["state"] != "success":
            raise RuntimeError("the first training run failed")
        harness.wait_until_monitor_idle(stack.client())
        for name in sorted(set(args.measure), key=list(REPORTS).index):
            if name == "mttr":
                figures, samples = measure_mttr(stack, args.kills)
            elif name == "freshness":
                load = wrk if args.under_load else None
                figures, samples = measure_freshness(stack, args.runs, load)
            else:
                measure = measure_load if name == "load" else measure_history
                figures, samples = measure(wrk, stack, args.rounds)
            figures = figures if name == "mttr" else {**settings, **figures}
            harness.publish(REPORTS[name](figures), args.results, samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
