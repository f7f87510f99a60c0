"""Reproduction: Airflow's task supervisor (``ActivitySubprocess``) notices a task process's
exit up to ``[workers] min_heartbeat_interval`` late, timed under 5 (the default) and 1
(config/airflow.cfg) with a stand-in API client.

    .venv/bin/python bench/supervisor_exit_tail.py [--runs 20]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

LINGER_S = 0.3
INTERVALS = (5, 1)


def stand_in_client() -> SimpleNamespace:
    """What ActivitySubprocess calls on its API client: start, heartbeat, finish."""
    started = SimpleNamespace(should_retry=False, start_date=None)
    calls = {"start": lambda *_, **__: started, "heartbeat": lambda *_, **__: None}
    return SimpleNamespace(task_instances=SimpleNamespace(**calls, finish=calls["heartbeat"]))


def linger_after_closing_sockets() -> None:
    """Close every descriptor (the supervisor sees EOF on all four sockets), then exit later."""
    os.closerange(0, 1024)
    time.sleep(LINGER_S)
    os._exit(0)


def child(case: str, runs: int) -> None:
    """In a fresh interpreter, so that the supervisor reads the interval under test."""
    from airflow.sdk.api.datamodels._generated import BundleInfo, TaskInstance
    from airflow.sdk.execution_time.supervisor import ActivitySubprocess

    target = {"linger": linger_after_closing_sockets, "exit": lambda: None}[case]
    for _ in range(runs):
        ids = {"id": uuid.uuid4(), "dag_version_id": uuid.uuid4()}
        ti = TaskInstance(task_id="t", dag_id="d", run_id="r", try_number=1, **ids)
        started = time.monotonic()
        ActivitySubprocess.start(
            what=ti,
            dag_rel_path="unused.py",
            bundle_info=BundleInfo(name="unused"),
            client=stand_in_client(),
            target=target,
        ).wait()
        print(f"{time.monotonic() - started:.4f}", flush=True)


def measure(case: str, interval: int, runs: int) -> list[float]:
    env = {**os.environ, "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": str(interval)}
    env.setdefault("AIRFLOW_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "exit-tail"))
    command = [sys.executable, __file__, "--child", case, str(runs)]
    out = subprocess.run(command, env=env, check=True, capture_output=True).stdout
    return [float(t) for t in out.split()]


def summary(times: list[float], interval: int) -> dict:
    late = f"{sum(t > 0.9 * interval for t in times)} of {len(times)}"
    return {
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "late": late,
    }


def report(f: dict):
    from harness import Report, table

    header = ("case", "min_heartbeat_interval (s)", "median (s)", "max (s)", "late")
    rows = [
        (f"`{case}`", i, f"{r['median_s']:.3f}", f"{r['max_s']:.3f}", r["late"])
        for case, by_interval in f["results"].items()
        for i, r in by_interval.items()
    ]
    method = (
        "Fork -> `ActivitySubprocess.wait()` returning. `linger`: the task process closes "
        f"its sockets {LINGER_S} s before it exits (the race, made deterministic: should take"
        f" {LINGER_S} s); `exit`: it returns at once, as every task does (should take a few "
        "ms). *Late* = at least 0.9x the interval (`[workers] min_heartbeat_interval`)."
    )
    title = "Task supervisor: exit noticed up to `min_heartbeat_interval` late"
    return Report("supervisor_exit_tail", title, method, [], [table(header, rows)], f)


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]))
        return 0
    sys.path.insert(0, str(Path(__file__).parent))  # the harness, imported only out here
    from harness import Arguments, publish

    parser = Arguments(__doc__, {"supervisor_exit_tail": report})
    parser.add_argument("--runs", type=int, default=20, help="runs of `exit` (`linger`: 3)")
    args = parser.parse_args()
    samples = {
        c: {str(i): measure(c, i, runs) for i in INTERVALS}
        for c, runs in (("linger", 3), ("exit", args.runs))
    }
    results = {case: {i: summary(s, int(i)) for i, s in by.items()} for case, by in samples.items()}
    publish(report({"linger_s": LINGER_S, "results": results}), args.results, samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
