"""Monitor throughput: wrk against the Flask monitor, cached (shipped defaults) vs uncached.

    .venv/bin/python bench/monitor_load.py [--duration 10] [--connections 32] [--rounds 2]

After one finished training run on the embedded stack, wrk (``-t 2``, 32 connections, pinned
to one CPU; installed from Debian when missing) loads ``/health`` and ``/api/status`` of three
instances of the monitor in turn, each served as deployed (gunicorn started by the process
launcher): *cached*, the shipped defaults, against *baseline*, ``MONITOR_CACHE_TTL=0`` (no
cache, though requests arriving while a round is in flight still share it), and
*per_request*, TTL 0 on 8 single-thread workers (one Airflow round per request, as a monitor
sharing nothing makes). bench/results/monitor_load.{md,json,png}: requests/s, latency
percentiles, errors and the Airflow rounds the monitor's own ``/metrics`` counts, with ratios.

Then (``--history-only``: only this) a few more runs, one failed, and wrk on ``/api/status``
and ``/history`` of a fourth instance with the shipped defaults that reaches Airflow through a
proxy counting every REST call: bench/results/monitor_history.{md,json}.

Targets: cached ``/api/status`` >= 10x the baseline's requests/s; p99 <= 50 ms; <= 1 round of
Airflow calls per TTL window; ``/history`` p99 <= 50 ms and a bounded number of REST calls per
window (one dagRuns call once the runs are known).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import requests
from harness import (
    Report,
    Target,
    alternating,
    arguments,
    embedded_stack,
    publish,
    pyplot,
    table,
)
from harness import wait_until_monitor_idle as monitor_idle

from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from embedded.stack import EmbeddedStack
from monitor.config import DEFAULTS as MONITOR_DEFAULTS
from testkit.debian import ensure_debian_tool
from testkit.flask_service import served_monitor as serve
from testkit.local_http import LocalHTTPServer
from testkit.runs import failing_conf, finished_run

ROUTES = ("/health", "/api/status")
HISTORY_ROUTES = ("/api/status", "/history")
TTL_S = float(MONITOR_DEFAULTS["CACHE_TTL"])
WARM_UP_S = 2  # before the measured runs: token, templates, connections, finished runs read
UNCACHED = {"MONITOR_CACHE_TTL": "0"}
# What each instance changes from the shipped defaults, and what that makes it.
VARIANTS = {
    "cached": {"env": {}, "is": "the shipped defaults (1 gthread worker x 8 threads, TTL 2 s)"},
    "baseline": {
        "env": UNCACHED,
        "is": "the shipped defaults + MONITOR_CACHE_TTL=0: no cache, but requests arriving "
        "while a round is in flight still share it",
    },
    "per_request": {
        "env": {**UNCACHED, "FLASK_MONITOR_WORKERS": "8", "FLASK_MONITOR_THREADS": "1"},
        "is": "MONITOR_CACHE_TTL=0 with 8 workers x 1 thread: the same 8-way concurrency, "
        "and nothing to share, so exactly one Airflow round per request",
    },
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
# The load table's rows for each route: label, figure, its cell for the cached and for the
# uncached instances, and the cells of the cached one's ratios to those (None: no ratios).
TABLE_ROWS = (
    ("req/s", "requests_per_s", "{:.0f}", "{:.0f}", ("**{:.1f}x**", "{:.1f}x")),
    *((f"{p} ms", f"{p}_ms", "{:.1f}", "{:.1f}", ("{:.3f}",) * 2) for p in ("p50", "p90", "p99")),
    ("Airflow rounds / request", "upstream_rounds_per_request", "{:.4f}", "{:.3f}", None),
    ("errors (non-2xx, socket)", "errors", "{}", "{}", None),
)


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


@dataclass
class Wrk:
    binary: str
    threads: int
    connections: int
    duration: float

    def run(self, url: str, duration: float | None = None) -> dict:
        """One pinned run on ``url`` (the configured duration unless given): its figures."""
        duration = duration or self.duration
        command = [self.binary, f"-t{self.threads}", f"-c{self.connections}", f"-d{duration:g}s"]
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(WRK_REPORT)
            script.flush()
            done = subprocess.run(
                [*command, "--timeout", "10s", "-s", script.name, url],
                capture_output=True,
                text=True,
                timeout=duration + 60,
                preexec_fn=pin_wrk,
            )
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


def in_turn(rounds: int, runs: dict[tuple[str, str], Callable[[], dict]]) -> dict:
    """harness' ``alternating`` of wrk runs, a second apart, each printed."""

    def announced(key: tuple[str, str], run: Callable[[], dict]) -> dict:
        time.sleep(1)
        sample = run()
        latency = sample["latency_ms"]
        print(
            f"{key[0]:11} {key[1]:11} {sample['requests_per_s']:8.1f} req/s  "
            f"p50 {latency['p50']:7.2f} ms  p99 {latency['p99']:7.2f} ms",
            flush=True,
        )
        return sample

    trials = {key: partial(announced, key, run) for key, run in runs.items()}
    return alternating(trials, rounds, warm_up=False)


# -- three instances: Airflow rounds counted by the monitor itself ---------------------------
@contextmanager
def served_monitor(stack: EmbeddedStack, name: str, env: dict[str, str]) -> Iterator[str]:
    """testkit's ``served_monitor`` (deployed as shipped, but for ``env``) in a workdir
    named after the instance: yields its URL."""
    with serve(stack, stack.home / f"bench-monitor-{name}", **env) as url:
        yield url


def metrics(url: str) -> dict[str, float]:
    """``/metrics`` as ``{'name{labels}': value}`` (one gunicorn worker's, if there are more)."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    samples = (line.rpartition(" ") for line in text.splitlines() if line and line[0] != "#")
    return {key: float(value) for key, _, value in samples}


def counter_delta(before: dict, after: dict, prefix: str) -> dict[str, float]:
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if key.startswith(prefix) and after[key] - before.get(key, 0.0)
    }


def sum_matching(delta: dict[str, float], *needles: str) -> float:
    return sum(v for k, v in delta.items() if all(n in k for n in needles))


def measure(wrk: Wrk, url: str, env: dict[str, str], route: str) -> dict:
    """One wrk run on ``route``, with the Airflow rounds the monitor's /metrics counted."""
    before = metrics(url)
    result = wrk.run(f"{url}{route}")
    after = metrics(url)
    call = 'call="snapshot"' if route == "/api/status" else 'call="health"'
    served = f'endpoint="{route}"'
    calls = "monitor_airflow_calls_total"
    ttl = float(env.get("MONITOR_CACHE_TTL", TTL_S))
    workers = int(env.get("FLASK_MONITOR_WORKERS", "1"))
    sample = {**result, "ttl_s": ttl, "workers": workers}
    if workers > 1:
        # Each scrape reaches one worker, and only one worker's own totals agree with each
        # other: the ratio of each worker that served the route, over a few scrapes.
        ratios = []
        for _ in range(4 * workers):
            totals = metrics(url)
            if requests_served := sum_matching(totals, "monitor_http_requests_total", served):
                ratios.append(sum_matching(totals, calls, call) / requests_served)
        ratio = round(statistics.median(ratios), 4) if ratios else float("nan")
        return {**sample, "upstream_rounds_per_request": ratio}
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


def measure_variants(wrk: Wrk, stack: EmbeddedStack, run: dict, rounds: int) -> dict:
    """``{route: {variant: [sample per round]}}`` for /health and /api/status."""
    with ExitStack() as started:
        urls = {
            name: started.enter_context(served_monitor(stack, name, variant["env"]))
            for name, variant in VARIANTS.items()
        }
        for name, url in urls.items():  # each shows the finished run, its tasks and metrics
            status = requests.get(f"{url}/api/status", timeout=30).json()
            if status.get("run_id") != run["dag_run_id"] or not status.get("metrics"):
                raise RuntimeError(f"{name} monitor shows {status}, not the finished run")
            if len(status.get("tasks") or []) < 2:
                raise RuntimeError(f"{name} monitor shows no tasks: {status}")
        for url in urls.values():
            for route in ROUTES:
                wrk.run(f"{url}{route}", WARM_UP_S)
        runs = {
            (name, route): partial(measure, wrk, url, VARIANTS[name]["env"], route)
            for route in ROUTES
            for name, url in urls.items()
        }
        samples = in_turn(rounds, runs)
    return {route: {name: samples[name, route] for name in VARIANTS} for route in ROUTES}


# -- the history page: REST calls seen by a counting proxy ----------------------------------
class CountingProxy(LocalHTTPServer):
    """Forwards every request to Airflow and counts them: what the monitor really costs it."""

    def __init__(self, upstream: str) -> None:
        self.calls = 0
        lock, session, proxy = threading.Lock(), requests.Session(), self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                with lock:
                    proxy.calls += 1
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

        super().__init__(Handler)


def measure_history(wrk: Wrk, stack: EmbeddedStack, rounds: int) -> dict:
    """/api/status and /history on the shipped defaults, every REST call counted."""
    proxy = CountingProxy(stack.api_url)

    def counted(url: str) -> dict:
        before = proxy.calls
        result = wrk.run(url)
        calls, windows = proxy.calls - before, result["duration_s"] / TTL_S
        return {
            **result,
            "rest_calls": calls,
            "ttl_windows": round(windows, 2),
            "rest_calls_per_ttl_window": round(calls / windows, 3),
        }

    try:
        with served_monitor(stack, "history", {"MONITOR_AIRFLOW_URL": proxy.url}) as url:
            shown = requests.get(f"{url}/history", timeout=60).text.count('class="run ')
            expected = min(len(stack.client().runs(TRAINING, limit=100)), 20)
            if shown != expected:
                raise RuntimeError(f"/history shows {shown} runs, Airflow has {expected}")
            for route in HISTORY_ROUTES:
                wrk.run(f"{url}{route}", WARM_UP_S)
            runs = {("history", r): partial(counted, f"{url}{r}") for r in HISTORY_ROUTES}
            samples = in_turn(rounds, runs)
    finally:
        proxy.stop()
    return {"runs_shown": shown, "samples": {r: samples["history", r] for r in HISTORY_ROUTES}}


# -- figures and reports -----------------------------------------------------------------------
def median(values: Iterable[float], digits: int = 2) -> float:
    return round(statistics.median(values), digits)


def over_rounds(runs: list[dict], rps_digits: int) -> dict:
    """What each route reports over its rounds: median req/s and p99, worst p99, errors."""
    p99 = [r["latency_ms"]["p99"] for r in runs]
    return {
        "requests_per_s": median((r["requests_per_s"] for r in runs), rps_digits),
        "p99_ms": median(p99),
        "p99_ms_worst": max(p99),
        "errors": sum(sum(r["errors"].values()) for r in runs),
    }


def route_figures(by_variant: dict[str, list[dict]]) -> dict:
    """Each variant's figures over the rounds, and the cached one's ratios to the others."""
    figures = {}
    for variant, runs in by_variant.items():
        per_window = [r.get("upstream_rounds_per_ttl_window") for r in runs]
        figures[variant] = {
            **over_rounds(runs, rps_digits=2),
            "p50_ms": median(r["latency_ms"]["p50"] for r in runs),
            "p90_ms": median(r["latency_ms"]["p90"] for r in runs),
            "max_ms": max(r["latency_ms"]["max"] for r in runs),
            "upstream_rounds_per_request": median(
                (r["upstream_rounds_per_request"] for r in runs), 4
            ),
            "upstream_rounds_per_ttl_window": None if None in per_window else max(per_window),
        }

    def ratio(against: str, key: str, digits: int) -> float:
        return round(figures["cached"][key] / figures[against][key], digits)

    figures["ratio"] = {
        against: {
            "requests_per_s": ratio(against, "requests_per_s", 1),
            "p50": ratio(against, "p50_ms", 3),
            "p99": ratio(against, "p99_ms", 3),
        }
        for against in ("baseline", "per_request")
    }
    return figures


def load_table(routes: dict) -> str:
    """``TABLE_ROWS`` for each route: the cached, baseline and per-request figures and ratios."""
    rows = []
    for route, f in routes.items():
        for i, (label, key, cached_cell, cell, ratio_cells) in enumerate(TABLE_ROWS):
            c, b, p = (f[variant][key] for variant in VARIANTS)
            to_b, to_p = "", ""
            if ratio_cells:
                to_b, to_p = ratio_cells[0].format(c / b), ratio_cells[1].format(c / p)
            first = "" if i else f"`{route}`"
            rows.append(
                (first, label, cached_cell.format(c), cell.format(b), to_b, cell.format(p), to_p)
            )
    header = "route|figure|cached|baseline (TTL=0)|cached / baseline|per-request baseline|"
    return table((header + "cached / per-request").split("|"), rows)


def load_report(settings: dict, samples: dict[str, dict[str, list[dict]]]) -> Report:
    """monitor_load: each variant's figures per route, the ratios and the three targets."""
    routes = {route: route_figures(by_variant) for route, by_variant in samples.items()}
    status, cached = routes["/api/status"], [routes[r]["cached"] for r in ROUTES]
    status_runs = samples["/api/status"]["cached"]
    refresh = [r["refresh_ms_estimate"] for r in status_runs if r["refresh_ms_estimate"]]
    summary = {
        "upstream_rounds_per_ttl_window": max(f["upstream_rounds_per_ttl_window"] for f in cached),
        "refresh_ms_estimate_median": statistics.median(refresh) if refresh else None,
        "errors_cached": sum(f["errors"] for f in cached),
    }
    ratio = status["ratio"]["baseline"]["requests_per_s"]
    return Report(
        name="monitor_load",
        title="Flask monitor throughput (gunicorn, real embedded Airflow behind)",
        method=(
            f"wrk `{settings['wrk']}` pinned to CPU {settings['wrk_cpus']}, "
            f"{settings['rounds']} alternating round(s) per instance and route (medians shown), "
            "after a 2 s warm-up each. All three instances are gunicorn started by the process "
            "launcher, reading the same Airflow with the viewer account, after one finished "
            f"training run. Load average before: {settings['load_average_1m_before']}."
        ),
        targets=[
            Target(
                "`/api/status` req/s >= 10x the TTL=0 baseline",
                f"{status['cached']['requests_per_s']:.0f} vs "
                f"{status['baseline']['requests_per_s']:.0f} = {ratio:.1f}x (vs one round per "
                f"request: {status['ratio']['per_request']['requests_per_s']:.1f}x)",
                ratio >= THROUGHPUT_RATIO_TARGET,
            ),
            Target(
                "p99 <= 50 ms (cached)",
                f"`/api/status` {status['cached']['p99_ms']:.1f} ms, "
                f"`/health` {routes['/health']['cached']['p99_ms']:.1f} ms",
                all(f["p99_ms"] <= P99_TARGET_MS for f in cached),
            ),
            Target(
                "<= 1 Airflow round per TTL window",
                f"{summary['upstream_rounds_per_ttl_window']:.2f}",
                summary["upstream_rounds_per_ttl_window"] <= CALLS_PER_WINDOW_TARGET,
            ),
        ],
        sections=[
            "\n".join(f"- *{name}*: {v['is']}." for name, v in settings["variants"].items()),
            load_table(routes),
            "Airflow rounds are the monitor's own `monitor_airflow_calls_total` (one round = "
            "latest run + task instances + model XCom for `/api/status`, one health probe for "
            "`/health`) over its `monitor_http_requests_total`, read from `/metrics` before and "
            "after each run (per-request baseline: one worker's totals). Cached `/api/status` "
            f"runs: {[int(r['upstream_rounds']) for r in status_runs]} rounds in "
            f"{[r['ttl_windows'] for r in status_runs]} TTL windows; "
            f"{[int(r['stale_answers']) for r in status_runs]} answers given stale while a "
            'refresh was in flight (`monitor_status_cache_total{result="stale"}`), i.e. a '
            f"refresh took about {summary['refresh_ms_estimate_median'] or 0:.0f} ms under "
            "this load and only the request making it waited.",
            "The history page is measured in the same run: `monitor_history.md`.",
        ],
        data={"settings": settings, "samples": samples, "routes": routes, "summary": summary},
        plot=lambda path: plot_load(routes, path),
    )


def history_report(settings: dict, runs_shown: int, samples: dict[str, list[dict]]) -> Report:
    """monitor_history: each route's median req/s and p99 and its REST calls per TTL window."""
    routes = {
        route: {
            **over_rounds(runs, rps_digits=1),
            "rest_calls_per_ttl_window": max(r["rest_calls_per_ttl_window"] for r in runs),
        }
        for route, runs in samples.items()
    }
    page, status = routes["/history"], routes["/api/status"]
    rows = []
    for route, f in routes.items():
        rps, p99, calls = f["requests_per_s"], f["p99_ms"], f["rest_calls_per_ttl_window"]
        rows.append((f"`{route}`", f"{rps:.0f}", f"{p99:.1f}", f"{calls:.2f}", f["errors"]))
    return Report(
        name="monitor_history",
        title="Flask monitor: the history page under load",
        method=(
            f"A monitor with the shipped defaults shows the last {runs_shown} runs (one failed) "
            "and reaches Airflow through a proxy that counts every REST call (login, dagRuns, "
            f"task instances, XCom, logs). wrk `{settings['wrk']}`, {settings['rounds']} "
            "round(s), one route at a time, after a 2 s warm-up each; TTL "
            f"{settings['cache_ttl_s']:g} s. Load average before: "
            f"{settings['load_average_1m_before']}."
        ),
        targets=[
            Target(
                f"`/history` p99 <= {P99_TARGET_MS:g} ms",
                f"{page['p99_ms']:.1f} ms (`/api/status` beside it: {status['p99_ms']:.1f} ms)",
                page["p99_ms"] <= P99_TARGET_MS,
            ),
            Target(
                f"`/history` REST calls per TTL window <= {HISTORY_CALLS_PER_WINDOW_TARGET}",
                f"{page['rest_calls_per_ttl_window']:.2f} (`/api/status`: "
                f"{status['rest_calls_per_ttl_window']:.2f})",
                page["rest_calls_per_ttl_window"] <= HISTORY_CALLS_PER_WINDOW_TARGET,
            ),
        ],
        sections=[table(("route", "req/s", "p99 ms", "REST calls / TTL window", "errors"), rows)],
        data={"settings": settings, "runs_shown": runs_shown, "samples": samples, "routes": routes},
    )


def plot_load(routes: dict, path: Path) -> None:
    """Requests/s per route and variant, and their latency percentiles against the target."""
    plt = pyplot()
    fig, (ax_rps, ax_lat) = plt.subplots(1, 2, figsize=(12, 4.4))
    width, percentiles = 0.27, ("p50", "p90", "p99")
    colors = {"cached": "tab:blue", "baseline": "tab:gray", "per_request": "tab:brown"}
    for i, variant in enumerate(VARIANTS):
        xs = [j + (i - 1) * width for j in range(len(ROUTES))]
        values = [routes[r][variant]["requests_per_s"] for r in ROUTES]
        bars = ax_rps.bar(xs, values, width, label=variant, color=colors[variant])
        ax_rps.bar_label(bars, fmt="%.0f", fontsize=8)
    for route, style in zip(ROUTES, ("--", "-"), strict=True):
        for variant in VARIANTS:
            latencies = [routes[route][variant][f"{p}_ms"] for p in percentiles]
            label, color = f"{variant} {route}", colors[variant]
            ax_lat.plot(percentiles, latencies, style, marker="o", color=color, label=label)
    ax_rps.set_xticks(range(len(ROUTES)), ROUTES)
    ax_rps.set(yscale="log", ylabel="requests/s (log)", title="Throughput, 32 connections")
    ax_rps.legend(fontsize=8)
    ax_lat.axhline(P99_TARGET_MS, color="tab:red", linewidth=0.8, label="50 ms target")
    ax_lat.set(yscale="log", ylabel="latency ms (log)", title="Latency percentiles")
    ax_lat.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    wrk = Wrk(ensure_wrk(), args.threads, args.connections, args.duration)
    settings = {
        "wrk": f"-t{args.threads} -c{args.connections} -d{args.duration:g}s",
        "rounds": args.rounds,
        "cache_ttl_s": TTL_S,
        "load_average_1m_before": round(os.getloadavg()[0], 2),
    }
    with embedded_stack() as stack:
        # A finished run for /api/status to show, and the monitor DAG run it triggers over
        # too: its tasks would otherwise run in the middle of a measurement.
        run = finished_run(stack)
        if run["state"] != "success":
            raise RuntimeError(f"training run {run['dag_run_id']} ended {run['state']}")
        monitor_idle(stack.client())
        if not args.history_only:
            samples = measure_variants(wrk, stack, run, args.rounds)
            cpus = {"wrk_cpus": sorted(wrk_cpus()), "variants": VARIANTS}
            load = {**settings, **cpus, "training_run": run["dag_run_id"]}
            publish(load_report(load, samples), args.results)
        for conf in [failing_conf(), *[{}] * args.history_runs]:  # history: one failed run
            finished_run(stack, conf)
        monitor_idle(stack.client())
        history = measure_history(wrk, stack, args.rounds)
    publish(history_report(settings, **history), args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
