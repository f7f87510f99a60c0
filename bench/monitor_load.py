"""Monitor throughput: wrk against the Flask monitor, cached (shipped defaults) vs uncached.

    .venv/bin/python bench/monitor_load.py [--duration 10] [--connections 32] [--rounds 2]

After one finished training run on the embedded stack, wrk (pinned to one CPU; installed from
Debian when missing) loads ``/health`` and ``/api/status`` of three instances of the monitor
in turn, each served as deployed (gunicorn started by the process launcher), counting the
Airflow rounds with the monitor's own ``/metrics`` (result: monitor_load). Then
(``--history-only``: only this) a few more runs, one failed, and wrk on ``/api/status`` and
``/history`` of a fourth instance with the shipped defaults that reaches Airflow through a
proxy counting every REST call (result: monitor_history).
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler

import requests
from harness import Report, Target, alternating, arguments, embedded_stack, publish, rebuild, table
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
VARIANTS = {  # what each instance changes from the shipped defaults, and what that makes it
    "cached": ({}, "the shipped defaults (1 gthread worker x 8 threads, TTL 2 s)"),
    "baseline": (
        UNCACHED,
        "MONITOR_CACHE_TTL=0: no cache, but requests arriving while a round is in flight "
        "still share it",
    ),
    "per_request": (
        {**UNCACHED, "FLASK_MONITOR_WORKERS": "8", "FLASK_MONITOR_THREADS": "1"},
        "MONITOR_CACHE_TTL=0 with 8 workers x 1 thread: the same 8-way concurrency and "
        "nothing to share, so one Airflow round per request",
    ),
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
    'WRK_JSON {"requests": %d, "duration_us": %d, "errors": %d, '
    .. '"p50": %d, "p90": %d, "p99": %d, "max": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


# -- the load generator ---------------------------------------------------------------------
def ensure_wrk() -> str:
    """The wrk binary; installed from Debian when missing and we are root, else a clear exit."""
    try:
        return ensure_debian_tool("wrk", "wrk")
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def pin_wrk() -> None:  # subprocess preexec_fn
    """wrk on the last CPU this process may use: the load generator takes at most one core
    from the service it measures (and none on a 1-CPU machine)."""
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {allowed[-1]})


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
        latency = {f"{k}_ms": raw[k] / 1000 for k in ("p50", "p90", "p99", "max")}
        rps = raw["requests"] / seconds
        print(f"{url}: {rps:.0f} req/s, p99 {latency['p99_ms']:.1f} ms", flush=True)
        return {"duration_s": seconds, "requests_per_s": rps, "errors": raw["errors"], **latency}


@contextmanager
def served_monitor(stack: EmbeddedStack, name: str, env: dict[str, str]) -> Iterator[str]:
    """testkit's ``served_monitor`` (deployed as shipped, but for ``env``) in a workdir
    named after the instance: yields its URL."""
    with serve(stack, stack.home / f"bench-monitor-{name}", **env) as url:
        yield url


def in_turn(wrk: Wrk, rounds: int, runs: dict[tuple[str, str], partial]) -> dict:
    """harness' ``alternating`` of wrk runs, a second apart, after a warm-up of each URL."""
    for run in runs.values():
        wrk.run(run.args[-1], WARM_UP_S)
    trials = {key: lambda run=run: time.sleep(1) or run() for key, run in runs.items()}
    return alternating(trials, rounds, warm_up=False)


# -- three instances: Airflow rounds counted by the monitor itself ---------------------------
def metrics(url: str) -> list[tuple[str, float]]:
    """``/metrics`` samples: (name and labels, value); with more workers, one worker's."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    samples = (line.rpartition(" ") for line in text.splitlines() if line and line[0] != "#")
    return [(key, float(value)) for key, _, value in samples]


def total(samples: list[tuple[str, float]], *needles: str) -> float:
    return sum(v for key, v in samples if all(n in key for n in needles))


def measure(wrk: Wrk, url: str, variant: str, route: str) -> dict:
    """One wrk run on ``route``, with the Airflow rounds the monitor's /metrics counted."""
    call = 'call="snapshot"' if route == "/api/status" else 'call="health"'
    counted = (
        ("monitor_airflow_calls_total", call),
        ("monitor_http_requests_total", f'endpoint="{route}"'),
        ("monitor_status_cache_total", 'result="stale"'),
    )
    before = metrics(url)
    result = wrk.run(f"{url}{route}")
    after = metrics(url)
    if variant == "per_request":
        # Each scrape reaches one of the workers, and only one worker's totals agree with
        # each other: the median of a few scrapes' own ratios.
        scrapes = [metrics(url) for _ in range(32)]
        ratios = [
            total(m, *counted[0]) / total(m, *counted[1]) for m in scrapes if total(m, *counted[1])
        ]
        return {**result, "upstream_rounds_per_request": statistics.median(ratios)}
    rounds, served, stale = (total(after, *c) - total(before, *c) for c in counted)
    cached = variant == "cached"
    return {
        **result,
        "upstream_rounds_per_request": rounds / max(served, 1),
        "upstream_rounds_per_ttl_window": rounds * TTL_S / result["duration_s"] if cached else None,
        # Answers given stale while a refresh was in flight: at a steady request rate, their
        # number per round says how long a refresh took under this load.
        "refresh_ms": 1000 * stale / rounds / result["requests_per_s"]
        if cached and rounds
        else None,
    }


def measure_variants(wrk: Wrk, stack: EmbeddedStack, run: dict, rounds: int) -> dict:
    """``{route: {variant: [sample per round]}}`` for /health and /api/status."""
    with ExitStack() as started:
        urls = {
            name: started.enter_context(served_monitor(stack, name, env))
            for name, (env, _) in VARIANTS.items()
        }
        for name, url in urls.items():  # each shows the finished run, its tasks and metrics
            status = requests.get(f"{url}/api/status", timeout=30).json()
            shown = status.get("run_id") == run["dag_run_id"] and status.get("metrics")
            if not shown or len(status.get("tasks") or []) < 2:
                raise RuntimeError(f"{name} monitor shows {status}, not the finished run")
        runs = {
            (v, route): partial(measure, wrk, url, v, route)
            for route in ROUTES
            for v, url in urls.items()
        }
        samples = in_turn(wrk, rounds, runs)
    return {route: {v: samples[v, route] for v in VARIANTS} for route in ROUTES}


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


def measure_history(wrk: Wrk, stack: EmbeddedStack, rounds: int) -> tuple[int, dict]:
    """Runs shown, and ``{route: [sample per round]}`` of /api/status and /history on the
    shipped defaults, every REST call counted."""
    proxy = CountingProxy(stack.api_url)

    def counted(url: str) -> dict:
        before = proxy.calls
        result = wrk.run(url)
        return {
            **result,
            "rest_calls_per_ttl_window": (proxy.calls - before) * TTL_S / result["duration_s"],
        }

    try:
        with served_monitor(stack, "history", {"MONITOR_AIRFLOW_URL": proxy.url}) as url:
            shown = requests.get(f"{url}/history", timeout=60).text.count('class="run ')
            expected = min(len(stack.client().runs(TRAINING, limit=100)), 20)
            if shown != expected:
                raise RuntimeError(f"/history shows {shown} runs, Airflow has {expected}")
            runs = {("history", r): partial(counted, f"{url}{r}") for r in HISTORY_ROUTES}
            samples = in_turn(wrk, rounds, runs)
    finally:
        proxy.stop()
    return shown, {r: samples["history", r] for r in HISTORY_ROUTES}


# -- figures and reports -----------------------------------------------------------------------
def over_rounds(runs: list[dict]) -> dict:
    """Medians over the rounds (worst p99 and total errors beside them)."""
    keys = [k for k in runs[0] if k != "errors" and k != "duration_s"]
    medians = {
        k: round(statistics.median(values), 4)
        for k in keys
        if (values := [r[k] for r in runs if r[k] is not None])
    }
    worst = max(r["p99_ms"] for r in runs)
    return {**medians, "p99_ms_worst": worst, "errors": sum(r["errors"] for r in runs)}


def settings_line(settings: dict) -> str:
    return (
        f"wrk `{settings['wrk']}` pinned to one CPU, {settings['rounds']} alternating round(s) "
        f"per instance and route (medians shown), after a {WARM_UP_S} s warm-up each; TTL "
        f"{settings['cache_ttl_s']:g} s; load average before: {settings['load_average_1m_before']}."
    )


def load_report(f: dict) -> Report:
    """monitor_load: each variant's figures per route, the cached one's ratios, the targets."""
    routes = f["routes"]
    status, cached = routes["/api/status"], [routes[r]["cached"] for r in ROUTES]
    rows = []
    for route, by in routes.items():
        c, b, p = (by[v] for v in VARIANTS)
        rows += [
            (
                f"`{route}`",
                "req/s",
                *(f"{x['requests_per_s']:.0f}" for x in (c, b, p)),
                f"**{c['requests_per_s'] / b['requests_per_s']:.1f}x**",
                f"{c['requests_per_s'] / p['requests_per_s']:.1f}x",
            ),
            *(
                ("", f"{q} ms", *(f"{x[f'{q}_ms']:.1f}" for x in (c, b, p)), "", "")
                for q in ("p50", "p90", "p99")
            ),
            (
                "",
                "Airflow rounds / request",
                *(f"{x['upstream_rounds_per_request']:.4f}" for x in (c, b, p)),
                "",
                "",
            ),
            ("", "errors", *(x["errors"] for x in (c, b, p)), "", ""),
        ]
    ratio = status["cached"]["requests_per_s"] / status["baseline"]["requests_per_s"]
    per_window = max(x["upstream_rounds_per_ttl_window"] for x in cached)
    refresh = status["cached"].get("refresh_ms") or f.get("refresh_ms")
    return Report(
        name="monitor_load",
        title="Flask monitor throughput (gunicorn, real embedded Airflow behind)",
        method=settings_line(f["settings"]) + " All three instances are gunicorn started by the "
        "process launcher, reading the same Airflow with the viewer account, after one finished "
        "training run.",
        targets=[
            Target(
                f"`/api/status` req/s >= {THROUGHPUT_RATIO_TARGET:g}x the TTL=0 baseline",
                f"{status['cached']['requests_per_s']:.0f} vs "
                f"{status['baseline']['requests_per_s']:.0f} = {ratio:.1f}x",
                ratio >= THROUGHPUT_RATIO_TARGET,
            ),
            Target(
                f"p99 <= {P99_TARGET_MS:g} ms (cached)",
                ", ".join(
                    f"`{r}` {x['p99_ms']:.1f} ms" for r, x in zip(ROUTES, cached, strict=True)
                ),
                all(x["p99_ms"] <= P99_TARGET_MS for x in cached),
            ),
            Target(
                f"<= {CALLS_PER_WINDOW_TARGET:g} Airflow round per TTL window",
                f"{per_window:.2f}",
                per_window <= CALLS_PER_WINDOW_TARGET,
            ),
        ],
        sections=[
            "\n".join(f"- *{name}*: {what}." for name, (_, what) in VARIANTS.items()),
            table(
                ("route", "figure", *VARIANTS, "cached / baseline", "cached / per_request"), rows
            ),
            "Airflow rounds are the monitor's own `monitor_airflow_calls_total` over its "
            "`monitor_http_requests_total`, from `/metrics` before and after each run. While a "
            "refresh is in flight the cached instance answers stale "
            f'(`monitor_status_cache_total{{result="stale"}}`): a refresh took about '
            f"{refresh or 0:.0f} ms under this load, and only the request making it waited.",
        ],
        figures=f,
    )


def history_report(f: dict) -> Report:
    """monitor_history: each route's req/s, p99 and REST calls per TTL window."""
    routes = f["routes"]
    page, status = routes["/history"], routes["/api/status"]
    rows = [
        (
            f"`{r}`",
            f"{x['requests_per_s']:.0f}",
            f"{x['p99_ms']:.1f}",
            f"{x['rest_calls_per_ttl_window']:.2f}",
            x["errors"],
        )
        for r, x in routes.items()
    ]
    return Report(
        name="monitor_history",
        title="Flask monitor: the history page under load",
        method=f"A monitor with the shipped defaults shows the last {f['runs_shown']} runs (one "
        "failed) and reaches Airflow through a proxy that counts every REST call (login, "
        "dagRuns, task instances, XCom, logs); one route at a time. "
        + settings_line(f["settings"]),
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
        figures=f,
    )


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2-core machine)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating repeats of each run")
    parser.add_argument("--history-runs", type=int, default=3, help="more runs for /history")
    parser.add_argument("--history-only", action="store_true", help="measure the history page only")
    args = parser.parse_args(argv)
    if args.rebuild:
        return rebuild(
            {"monitor_load": load_report, "monitor_history": history_report}, args.results
        )
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
            routes = {r: {v: over_rounds(s) for v, s in by.items()} for r, by in samples.items()}
            report = load_report({"settings": settings, "routes": routes})
            report.samples = samples
            publish(report, args.results)
        for conf in [failing_conf(), *[{}] * args.history_runs]:  # history: one failed run
            finished_run(stack, conf)
        monitor_idle(stack.client())
        shown, samples = measure_history(wrk, stack, args.rounds)
    routes = {r: over_rounds(s) for r, s in samples.items()}
    report = history_report({"settings": settings, "runs_shown": shown, "routes": routes})
    report.samples = samples
    publish(report, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
