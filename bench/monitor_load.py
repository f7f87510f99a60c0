"""Monitor throughput: wrk against the Flask monitor, cached (shipped defaults) vs uncached.

    .venv/bin/python bench/monitor_load.py [--duration 10] [--connections 32] [--rounds 2]

Boots the embedded stack, finishes one training run (so /api/status has a run with tasks and
metrics), then serves the monitor three times the way it is deployed (gunicorn started by
``flask_launcher.process.ProcessLauncher``): with the shipped defaults (*cached*); with
``MONITOR_CACHE_TTL=0`` (*baseline*, the target's reference: no cache, though requests that
arrive while a round is in flight still share it); and with ``MONITOR_CACHE_TTL=0`` on 8
single-thread workers (*per_request*: exactly one Airflow round per request, as a monitor
that shares nothing makes). wrk (``-t 2``, 32 connections, pinned to one CPU) loads
``/health`` and ``/api/status`` on each in turn. Reports requests/s, latency percentiles,
errors and the Airflow rounds counted by the monitor's own ``/metrics``, with the ratios, in
bench/results/monitor_load.{md,json,png}.

Then the history page: a few more runs (one of them failed), and a fourth instance with the
shipped defaults that reaches Airflow through a counting proxy, so every REST call it makes is
seen: wrk loads ``/api/status`` and ``/history`` on it, and bench/results/monitor_history.{md,json}
give each route's p99 and the REST calls per TTL window at that load (``--history-only``
measures only this).

Targets: cached ``/api/status`` >= 10x the baseline's requests/s; p99 <= 50 ms; <= 1 round of
Airflow calls per TTL window; ``/history`` p99 <= 50 ms and a bounded number of REST calls per
window (one dagRuns call once the runs are known). wrk is installed from Debian when missing
(root).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from harness import (
    MONITOR_DAG,
    Report,
    Target,
    arguments,
    embedded_stack,
    publish,
    pyplot,
    table,
    wait_until_monitor_idle,
)

from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from embedded.stack import EmbeddedStack
from monitor.config import DEFAULTS as MONITOR_DEFAULTS
from testkit.debian import ensure_debian_tool
from testkit.flask_service import served_monitor as serve
from testkit.local_http import LocalHTTPServer

ROUTES = ("/health", "/api/status")
HISTORY_ROUTES = ("/api/status", "/history")
UNCACHED = {"MONITOR_CACHE_TTL": "0"}
# What each instance changes from the shipped defaults, and how the report names it.
VARIANTS = {
    "cached": {},
    "baseline": UNCACHED,
    "per_request": {**UNCACHED, "FLASK_MONITOR_WORKERS": "8", "FLASK_MONITOR_THREADS": "1"},
}
DESCRIPTIONS = {
    "cached": "the shipped defaults (1 gthread worker x 8 threads, TTL 2 s)",
    "baseline": "the shipped defaults + MONITOR_CACHE_TTL=0: no cache, but requests arriving "
    "while a round is in flight still share it",
    "per_request": "MONITOR_CACHE_TTL=0 with 8 workers x 1 thread: the same 8-way concurrency, "
    "and nothing to share, so exactly one Airflow round per request",
}
THROUGHPUT_RATIO_TARGET = 10.0
P99_TARGET_MS = 50.0
CALLS_PER_WINDOW_TARGET = 1.0
# /history once its runs are known: one dagRuns call per window (login renewals aside).
HISTORY_CALLS_PER_WINDOW_TARGET = 1.5
# Every figure wrk prints at the end, as one JSON line (latencies in microseconds).
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
    .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
    .. '"latency_us": {"min": %d, "mean": %.1f, "stdev": %.1f, "p50": %d, "p75": %d, '
    .. '"p90": %d, "p99": %d, "p99_9": %d, "max": %d}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency:percentile(50), latency:percentile(75),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


# -- the load generator ---------------------------------------------------------------------
def ensure_wrk() -> str:
    """The wrk binary; installed from Debian when missing and we are root, else a clear exit."""
    try:
        return ensure_debian_tool("wrk", "wrk")
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def wrk_cpus() -> set[int]:
    """The CPU wrk is pinned to: the last one this process may use, so the load generator
    takes at most one core from the service it measures (and none on a 1-CPU machine)."""
    allowed = sorted(os.sched_getaffinity(0))
    return {allowed[-1]} if len(allowed) > 1 else set(allowed)


def pin_wrk() -> None:  # subprocess preexec_fn
    os.sched_setaffinity(0, wrk_cpus())


def run_wrk(wrk: str, url: str, duration: float, connections: int, threads: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_REPORT)
    try:
        command = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration:g}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
            url,
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + 60, preexec_fn=pin_wrk
        )
    finally:
        os.unlink(script.name)
    lines = [line for line in done.stdout.splitlines() if line.startswith("WRK_JSON ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    raw = json.loads(lines[-1].removeprefix("WRK_JSON "))
    seconds = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "duration_s": round(seconds, 3),
        "requests_per_s": round(raw["requests"] / seconds, 1),
        "errors": raw["errors"],
        "latency_ms": {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()},
    }


# -- the monitor, served as deployed ---------------------------------------------------------
@dataclass
class Monitor:
    name: str
    url: str
    settings: dict[str, str]
    log: Path

    @property
    def workers(self) -> int:
        return int(self.settings.get("FLASK_MONITOR_WORKERS", "1"))

    def metrics(self) -> dict[str, float]:
        """``/metrics`` as ``{'name{labels}': value}`` (one gunicorn worker by default)."""
        text = requests.get(f"{self.url}/metrics", timeout=10).text
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def status(self) -> dict:
        return requests.get(f"{self.url}/api/status", timeout=30).json()


@contextmanager
def served_monitor(stack: EmbeddedStack, name: str, settings: dict[str, str]) -> Iterator[Monitor]:
    """gunicorn via the process launcher, reading ``stack`` with the viewer account; every
    other MONITOR_*/FLASK_MONITOR_* setting is the shipped default unless ``settings`` say."""
    workdir = stack.home / f"bench-monitor-{name}"
    with serve(stack, workdir, **settings) as url:
        yield Monitor(name, url, settings, workdir / "monitor.log")


def finished_training_run(stack: EmbeddedStack) -> dict:
    """One successful training run, and the monitor DAG run it triggers finished too (it
    would otherwise run its tasks in the middle of a measurement)."""
    admin = stack.client()
    admin.set_paused(TRAINING, False)
    run = admin.trigger(TRAINING, {})
    run = admin.wait_for_run(TRAINING, run["dag_run_id"], timeout=300, poll=0.2)
    if run["state"] != "success":
        raise RuntimeError(f"training run {run['dag_run_id']} ended {run['state']}")
    wait_until_monitor_idle(admin)
    return run


# -- the history page: REST calls seen by a counting proxy ----------------------------------
class CountingProxy:
    """Forwards every request to Airflow and counts them: what the monitor really costs it."""

    def __init__(self, upstream: str) -> None:
        from http.server import BaseHTTPRequestHandler

        self.calls = 0
        lock = threading.Lock()
        session = requests.Session()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                with lock:
                    owner.calls += 1
                length = int(self.headers.get("Content-Length") or 0)
                answer = session.request(
                    self.command,
                    f"{upstream}{self.path}",
                    data=self.rfile.read(length) if length else None,
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                    timeout=30,
                    allow_redirects=False,
                )
                self.send_response(answer.status_code)
                for key in ("Content-Type", "Location"):
                    if key in answer.headers:
                        self.send_header(key, answer.headers[key])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PATCH = _forward

        self._server = LocalHTTPServer(Handler)
        self.url = self._server.url

    def stop(self) -> None:
        self._server.stop()


def more_runs(stack: EmbeddedStack, successes: int) -> list[dict]:
    """History to show: one failed run (a data file that is not there), then successes."""
    admin = stack.client()
    finished = []
    for conf in [{"data_path": "no-such-file.csv"}] + [{}] * successes:
        run = admin.trigger(TRAINING, conf)
        finished.append(admin.wait_for_run(TRAINING, run["dag_run_id"], timeout=300, poll=0.2))
    wait_until_monitor_idle(admin)
    return finished


def measure_history(wrk: str, stack: EmbeddedStack, args: argparse.Namespace) -> dict:
    """/api/status and /history on the shipped defaults, every REST call counted."""
    proxy = CountingProxy(stack.api_url)
    try:
        with served_monitor(stack, "history", {"MONITOR_AIRFLOW_URL": proxy.url}) as monitor:
            shown = requests.get(f"{monitor.url}/history", timeout=60).text.count('class="run ')
            expected = min(len(stack.client().runs(TRAINING, limit=100)), 20)
            if shown != expected:
                raise RuntimeError(f"/history shows {shown} runs, Airflow has {expected}")
            for route in HISTORY_ROUTES:  # warm-up: token, finished runs read once
                run_wrk(wrk, f"{monitor.url}{route}", 2, args.connections, args.threads)
            ttl = float(MONITOR_DEFAULTS["CACHE_TTL"])
            results: dict[str, list[dict]] = {route: [] for route in HISTORY_ROUTES}
            for _ in range(args.rounds):
                for route in HISTORY_ROUTES:
                    time.sleep(1)
                    before = proxy.calls
                    result = run_wrk(
                        wrk, f"{monitor.url}{route}", args.duration, args.connections, args.threads
                    )
                    calls = proxy.calls - before
                    windows = result["duration_s"] / ttl
                    results[route].append(
                        {
                            **result,
                            "rest_calls": calls,
                            "ttl_windows": round(windows, 2),
                            "rest_calls_per_ttl_window": round(calls / windows, 3),
                        }
                    )
                    print(
                        f"history    {route:11} {result['requests_per_s']:8.1f} req/s  "
                        f"p99 {result['latency_ms']['p99']:7.2f} ms  "
                        f"REST calls/window {calls / windows:.2f}",
                        flush=True,
                    )
    finally:
        proxy.stop()
    return {
        "runs_shown": shown,
        "samples": results,
        "routes": {
            route: {
                "requests_per_s": round(statistics.median(r["requests_per_s"] for r in runs), 1),
                "p99_ms": round(statistics.median(r["latency_ms"]["p99"] for r in runs), 2),
                "p99_ms_worst": max(r["latency_ms"]["p99"] for r in runs),
                "rest_calls_per_ttl_window": max(r["rest_calls_per_ttl_window"] for r in runs),
                "errors": sum(sum(r["errors"].values()) for r in runs),
            }
            for route, runs in results.items()
        },
    }


def counter_delta(before: dict, after: dict, prefix: str) -> dict[str, float]:
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if key.startswith(prefix) and after[key] - before.get(key, 0.0)
    }


def sum_matching(delta: dict[str, float], *needles: str) -> float:
    return sum(v for k, v in delta.items() if all(n in k for n in needles))


def measure(wrk: str, monitor: Monitor, route: str, args: argparse.Namespace) -> dict:
    before = monitor.metrics()
    result = run_wrk(wrk, f"{monitor.url}{route}", args.duration, args.connections, args.threads)
    after = monitor.metrics()
    call = 'call="snapshot"' if route == "/api/status" else 'call="health"'
    served = f'endpoint="{route}"'
    calls = "monitor_airflow_calls_total"
    ttl = float(monitor.settings.get("MONITOR_CACHE_TTL", MONITOR_DEFAULTS["CACHE_TTL"]))
    sample = {**result, "ttl_s": ttl, "workers": monitor.workers}
    if monitor.workers > 1:
        # Each scrape reaches one worker, and only one worker's own totals agree with each
        # other: the ratio of each worker that served the route, over a few scrapes.
        ratios = []
        for _ in range(4 * monitor.workers):
            totals = monitor.metrics()
            requests_served = sum_matching(totals, "monitor_http_requests_total", served)
            if requests_served:
                ratios.append(sum_matching(totals, calls, call) / requests_served)
        sample["upstream_rounds_per_request"] = (
            round(statistics.median(ratios), 4) if ratios else float("nan")
        )
        return sample
    rounds = sum_matching(counter_delta(before, after, calls), call)
    requests_served = sum_matching(counter_delta(before, after, "monitor_http"), served)
    windows = result["duration_s"] / ttl if ttl > 0 else None
    cache = counter_delta(before, after, "monitor_status_cache_total")
    stale = sum_matching(cache, 'result="stale"')
    return {
        **sample,
        "upstream_rounds": rounds,
        "upstream_rounds_per_request": round(rounds / max(requests_served, 1), 4),
        "ttl_windows": round(windows, 2) if windows else None,
        "upstream_rounds_per_ttl_window": round(rounds / windows, 3) if windows else None,
        "cache_delta": cache,
        # Answers given stale while a window's refresh was in flight: at a steady request
        # rate, their number per round says how long a refresh took under this load.
        "stale_answers": stale,
        "refresh_ms_estimate": (
            round(1000 * stale / rounds / result["requests_per_s"], 1) if stale and rounds else None
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2-core machine)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating repeats of each run")
    parser.add_argument(
        "--history-runs", type=int, default=3, help="more successful runs for /history"
    )
    parser.add_argument("--history-only", action="store_true", help="measure the history page only")
    args = parser.parse_args(argv)
    wrk = ensure_wrk()
    load_before = round(os.getloadavg()[0], 2)
    with embedded_stack() as stack:
        stack.wait_for_dags((TRAINING, MONITOR_DAG))
        run = finished_training_run(stack)
        if not args.history_only:
            samples = measure_variants(wrk, stack, run, args)
            report = summarize(samples, args, run, load_before)
            publish(load_report(report), args.results)
        more_runs(stack, args.history_runs)
        history = measure_history(wrk, stack, args)
    history["settings"] = {
        "wrk": f"-t{args.threads} -c{args.connections} -d{args.duration:g}s",
        "rounds": args.rounds,
        "cache_ttl_s": float(MONITOR_DEFAULTS["CACHE_TTL"]),
        "load_average_1m_before": load_before,
    }
    history["summary"] = history_summary(history)
    publish(history_report(history), args.results)
    return 0


def measure_variants(
    wrk: str, stack: EmbeddedStack, run: dict, args: argparse.Namespace
) -> dict[str, dict[str, list[dict]]]:
    """wrk on /health and /api/status of the cached, baseline and per-request instances."""
    samples: dict[str, dict[str, list[dict]]] = {r: {v: [] for v in VARIANTS} for r in ROUTES}
    with ExitStack() as started:
        monitors = {
            name: started.enter_context(served_monitor(stack, name, settings))
            for name, settings in VARIANTS.items()
        }
        check_status(monitors, run)
        for monitor in monitors.values():  # warm-up: token, templates, connections
            for route in ROUTES:
                run_wrk(wrk, f"{monitor.url}{route}", 2, args.connections, args.threads)
        for _ in range(args.rounds):
            for route in ROUTES:
                for variant, monitor in monitors.items():
                    time.sleep(1)
                    sample = measure(wrk, monitor, route, args)
                    samples[route][variant].append(sample)
                    print(
                        f"{variant:11} {route:11} {sample['requests_per_s']:8.1f} req/s  "
                        f"p50 {sample['latency_ms']['p50']:7.2f} ms  "
                        f"p99 {sample['latency_ms']['p99']:7.2f} ms  "
                        f"Airflow rounds/request {sample['upstream_rounds_per_request']}",
                        flush=True,
                    )
    return samples


def check_status(monitors: dict[str, Monitor], run: dict) -> None:
    """Every instance shows the finished run with its tasks and model metrics."""
    for monitor in monitors.values():
        status = monitor.status()
        if status.get("run_id") != run["dag_run_id"] or not status.get("metrics"):
            raise RuntimeError(f"{monitor.name} monitor shows {status}, not the finished run")
        if len(status.get("tasks") or []) < 2:
            raise RuntimeError(f"{monitor.name} monitor shows no tasks: {status}")


def figures_of(runs: list[dict]) -> dict:
    """Medians over the rounds (worst p99 and max kept too)."""
    per_window = [r.get("upstream_rounds_per_ttl_window") for r in runs]

    def median(values) -> float:
        return round(statistics.median(values), 2)

    return {
        "requests_per_s": median(r["requests_per_s"] for r in runs),
        "p50_ms": median(r["latency_ms"]["p50"] for r in runs),
        "p90_ms": median(r["latency_ms"]["p90"] for r in runs),
        "p99_ms": median(r["latency_ms"]["p99"] for r in runs),
        "p99_ms_worst": max(r["latency_ms"]["p99"] for r in runs),
        "max_ms": max(r["latency_ms"]["max"] for r in runs),
        "errors": sum(sum(r["errors"].values()) for r in runs),
        "upstream_rounds_per_request": round(
            statistics.median(r["upstream_rounds_per_request"] for r in runs), 4
        ),
        "upstream_rounds_per_ttl_window": None if None in per_window else max(per_window),
    }


def summarize(samples: dict, args: argparse.Namespace, run: dict, load_before: float) -> dict:
    routes = {}
    for route, by_variant in samples.items():
        figures = {variant: figures_of(runs) for variant, runs in by_variant.items()}
        cached = figures["cached"]
        figures["ratio"] = {
            against: {
                "requests_per_s": round(
                    cached["requests_per_s"] / figures[against]["requests_per_s"], 1
                ),
                "p50": round(cached["p50_ms"] / figures[against]["p50_ms"], 3),
                "p99": round(cached["p99_ms"] / figures[against]["p99_ms"], 3),
            }
            for against in ("baseline", "per_request")
        }
        routes[route] = figures
    status = routes["/api/status"]
    calls_per_window = max(routes[r]["cached"]["upstream_rounds_per_ttl_window"] for r in ROUTES)
    status_runs = samples["/api/status"]["cached"]
    refresh = [r["refresh_ms_estimate"] for r in status_runs if r["refresh_ms_estimate"]]
    ratio = status["ratio"]["baseline"]["requests_per_s"]
    return {
        "settings": {
            "wrk": f"-t{args.threads} -c{args.connections} -d{args.duration:g}s",
            "wrk_cpus": sorted(wrk_cpus()),
            "rounds": args.rounds,
            "variants": {
                name: {"env": VARIANTS[name], "is": DESCRIPTIONS[name]} for name in VARIANTS
            },
            "cache_ttl_s": float(MONITOR_DEFAULTS["CACHE_TTL"]),
            "training_run": run["dag_run_id"],
            "load_average_1m_before": load_before,
        },
        "samples": samples,
        "routes": routes,
        "summary": {
            "status_rps_cached": status["cached"]["requests_per_s"],
            "status_rps_baseline": status["baseline"]["requests_per_s"],
            "status_rps_ratio": ratio,
            "status_rps_per_request": status["per_request"]["requests_per_s"],
            "status_rps_ratio_per_request": status["ratio"]["per_request"]["requests_per_s"],
            "status_p50_ms_cached": status["cached"]["p50_ms"],
            "status_p99_ms_cached": status["cached"]["p99_ms"],
            "health_p99_ms_cached": routes["/health"]["cached"]["p99_ms"],
            "upstream_rounds_per_ttl_window": calls_per_window,
            "status_upstream_rounds": [int(r["upstream_rounds"]) for r in status_runs],
            "status_ttl_windows": [r["ttl_windows"] for r in status_runs],
            "status_stale_answers": [int(r["stale_answers"]) for r in status_runs],
            "refresh_ms_estimate_median": statistics.median(refresh) if refresh else None,
            "meets_throughput": ratio >= THROUGHPUT_RATIO_TARGET,
            "meets_p99": all(routes[r]["cached"]["p99_ms"] <= P99_TARGET_MS for r in ROUTES),
            "meets_upstream": calls_per_window <= CALLS_PER_WINDOW_TARGET,
            "errors_cached": sum(routes[r]["cached"]["errors"] for r in ROUTES),
        },
    }


def history_summary(history: dict) -> dict:
    routes = history["routes"]
    return {
        "history_runs_shown": history["runs_shown"],
        "history_p99_ms": routes["/history"]["p99_ms"],
        "history_rps": routes["/history"]["requests_per_s"],
        "history_rest_calls_per_ttl_window": routes["/history"]["rest_calls_per_ttl_window"],
        "status_rest_calls_per_ttl_window": routes["/api/status"]["rest_calls_per_ttl_window"],
        "status_p99_ms_beside_history": routes["/api/status"]["p99_ms"],
        "meets_history_p99": routes["/history"]["p99_ms"] <= P99_TARGET_MS,
        "meets_history_calls": routes["/history"]["rest_calls_per_ttl_window"]
        <= HISTORY_CALLS_PER_WINDOW_TARGET,
    }


def load_report(report: dict) -> Report:
    s, routes, cfg = report["summary"], report["routes"], report["settings"]
    rows = []
    for route, f in routes.items():
        c, b, p, r = f["cached"], f["baseline"], f["per_request"], f["ratio"]
        rows.append(
            (
                f"`{route}`",
                "req/s",
                f"{c['requests_per_s']:.0f}",
                f"{b['requests_per_s']:.0f}",
                f"**{r['baseline']['requests_per_s']:.1f}x**",
                f"{p['requests_per_s']:.0f}",
                f"{r['per_request']['requests_per_s']:.1f}x",
            )
        )
        for key, label in (("p50_ms", "p50 ms"), ("p90_ms", "p90 ms"), ("p99_ms", "p99 ms")):
            rows.append(
                (
                    "",
                    label,
                    f"{c[key]:.1f}",
                    f"{b[key]:.1f}",
                    f"{c[key] / b[key]:.3f}",
                    f"{p[key]:.1f}",
                    f"{c[key] / p[key]:.3f}",
                )
            )
        rounds = "upstream_rounds_per_request"
        rows.append(
            (
                "",
                "Airflow rounds / request",
                f"{c[rounds]:.4f}",
                f"{b[rounds]:.3f}",
                "",
                f"{p[rounds]:.3f}",
                "",
            )
        )
        rows.append(("", "errors (non-2xx, socket)", c["errors"], b["errors"], "", p["errors"], ""))
    variants = "\n".join(f"- *{name}*: {v['is']}." for name, v in cfg["variants"].items())
    header = (
        "route",
        "figure",
        "cached",
        "baseline (TTL=0)",
        "cached / baseline",
        "per-request baseline",
        "cached / per-request",
    )
    return Report(
        name="monitor_load",
        title="Flask monitor throughput (gunicorn, real embedded Airflow behind)",
        method=(
            f"wrk `{cfg['wrk']}` pinned to CPU {cfg['wrk_cpus']}, {cfg['rounds']} alternating "
            "round(s) per instance and route (medians shown), after a 2 s warm-up each. All "
            "three instances are gunicorn started by the process launcher, reading the same "
            "Airflow with the viewer account, after one finished training run. "
            f"Load average before: {cfg['load_average_1m_before']}."
        ),
        targets=[
            Target(
                "`/api/status` req/s >= 10x the TTL=0 baseline",
                f"{s['status_rps_cached']:.0f} vs {s['status_rps_baseline']:.0f} = "
                f"{s['status_rps_ratio']:.1f}x (vs one round per request: "
                f"{s['status_rps_ratio_per_request']:.1f}x)",
                s["meets_throughput"],
            ),
            Target(
                "p99 <= 50 ms (cached)",
                f"`/api/status` {s['status_p99_ms_cached']:.1f} ms, "
                f"`/health` {s['health_p99_ms_cached']:.1f} ms",
                s["meets_p99"],
            ),
            Target(
                "<= 1 Airflow round per TTL window",
                f"{s['upstream_rounds_per_ttl_window']:.2f}",
                s["meets_upstream"],
            ),
        ],
        sections=[
            variants,
            table(header, rows),
            "Airflow rounds are the monitor's own `monitor_airflow_calls_total` (one round = "
            "latest run + task instances + model XCom for `/api/status`, one health probe for "
            "`/health`) over its `monitor_http_requests_total`, read from `/metrics` before and "
            "after each run (per-request baseline: one worker's totals). Cached `/api/status` "
            f"runs: {s['status_upstream_rounds']} rounds in {s['status_ttl_windows']} TTL "
            f"windows; {s['status_stale_answers']} answers given stale while a refresh was in "
            'flight (`monitor_status_cache_total{result="stale"}`), i.e. a refresh took about '
            f"{s['refresh_ms_estimate_median'] or 0:.0f} ms under this load and only the "
            "request making it waited.",
            "The history page is measured in the same run: `monitor_history.md`.",
        ],
        data={k: report[k] for k in ("settings", "samples", "routes", "summary")},
        plot=lambda path: plot_results(report, path),
    )


def history_report(history: dict) -> Report:
    s, routes, cfg = history["summary"], history["routes"], history["settings"]
    rows = (
        (
            f"`{route}`",
            f"{f['requests_per_s']:.0f}",
            f"{f['p99_ms']:.1f}",
            f"{f['rest_calls_per_ttl_window']:.2f}",
            f["errors"],
        )
        for route, f in routes.items()
    )
    return Report(
        name="monitor_history",
        title="Flask monitor: the history page under load",
        method=(
            f"A monitor with the shipped defaults shows the last {s['history_runs_shown']} runs "
            "(one failed) and reaches Airflow through a proxy that counts every REST call "
            f"(login, dagRuns, task instances, XCom, logs). wrk `{cfg['wrk']}`, {cfg['rounds']} "
            "round(s), one route at a time, after a 2 s warm-up each; TTL "
            f"{cfg['cache_ttl_s']:g} s. Load average before: {cfg['load_average_1m_before']}."
        ),
        targets=[
            Target(
                f"`/history` p99 <= {P99_TARGET_MS:g} ms",
                f"{s['history_p99_ms']:.1f} ms (`/api/status` beside it: "
                f"{s['status_p99_ms_beside_history']:.1f} ms)",
                s["meets_history_p99"],
            ),
            Target(
                f"`/history` REST calls per TTL window <= {HISTORY_CALLS_PER_WINDOW_TARGET}",
                f"{s['history_rest_calls_per_ttl_window']:.2f} (`/api/status`: "
                f"{s['status_rest_calls_per_ttl_window']:.2f})",
                s["meets_history_calls"],
            ),
        ],
        sections=[table(("route", "req/s", "p99 ms", "REST calls / TTL window", "errors"), rows)],
        data=history,
    )


def plot_results(report: dict, path: Path) -> None:
    plt = pyplot()
    routes = report["routes"]
    names = list(VARIANTS)
    fig, (ax_rps, ax_lat) = plt.subplots(1, 2, figsize=(12, 4.4))
    width = 0.27
    colors = {"cached": "tab:blue", "baseline": "tab:gray", "per_request": "tab:brown"}
    for i, variant in enumerate(names):
        xs = [j + (i - 1) * width for j in range(len(ROUTES))]
        values = [routes[r][variant]["requests_per_s"] for r in ROUTES]
        bars = ax_rps.bar(xs, values, width, label=variant, color=colors[variant])
        ax_rps.bar_label(bars, fmt="%.0f", fontsize=8)
    ax_rps.set_xticks(range(len(ROUTES)), ROUTES)
    ax_rps.set_yscale("log")
    ax_rps.set_ylabel("requests/s (log)")
    ax_rps.set_title("Throughput, 32 connections")
    ax_rps.legend(fontsize=8)
    percentiles = ("p50_ms", "p90_ms", "p99_ms")
    for route, style in zip(ROUTES, ("--", "-"), strict=True):
        for variant in names:
            ax_lat.plot(
                [p.removesuffix("_ms") for p in percentiles],
                [routes[route][variant][p] for p in percentiles],
                style,
                marker="o",
                color=colors[variant],
                label=f"{variant} {route}",
            )
    ax_lat.axhline(P99_TARGET_MS, color="tab:red", linewidth=0.8, label="50 ms target")
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("latency ms (log)")
    ax_lat.set_title("Latency percentiles")
    ax_lat.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
