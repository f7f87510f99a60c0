"""Reproduction: Airflow's task supervisor notices a task process's exit up to
``[workers] min_heartbeat_interval`` late.

    .venv/bin/python bench/supervisor_exit_tail.py [--runs 20]

The supervisor (``ActivitySubprocess``, in a LocalExecutor or Celery worker) waits in
``select()`` on the task's sockets with that interval as timeout; once all reached EOF it asks
once, without blocking, whether the process exited, and if it is not reapable yet, looks again
only when the timeout runs out: the task's slot stays taken meanwhile. Timed here with the
installed Airflow, fork to ``wait()`` returning, under the interval 5 (Airflow's default) and 1
(``config/airflow.cfg``); the supervisor's API client is a stand-in, so no api-server is needed.
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


class StandInClient:
    """What ActivitySubprocess calls on its API client: start, heartbeat, finish."""

    def __init__(self) -> None:
        self.task_instances = self

    def start(self, *args, **kwargs) -> SimpleNamespace:
        return SimpleNamespace(should_retry=False, start_date=None)

    def heartbeat(self, *args, **kwargs) -> None:
        pass

    finish = heartbeat


def linger_after_closing_sockets() -> None:
    """Close every descriptor (the supervisor sees EOF on all four sockets), then exit later."""
    os.closerange(0, 1024)
    time.sleep(LINGER_S)
    os._exit(0)


def child(case: str, runs: int) -> None:
    """In a fresh interpreter, so that the supervisor reads the interval under test; ``exit``
    does nothing: the supervisor's own exit path closes the sockets."""
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
            client=StandInClient(),
            target=target,
        ).wait()
        print(f"{time.monotonic() - started:.4f}", flush=True)


def measure(case: str, interval: int, runs: int) -> list[float]:
    env = {**os.environ, "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": str(interval)}
    env.setdefault("AIRFLOW_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "exit-tail"))
    command = [sys.executable, __file__, "--child", case, str(runs)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return [float(line) for line in out.split()]


def report(f: dict):
    from harness import Report, table

    rows = [
        (f"`{case}`", interval, f"{r['median_s']:.3f}", f"{r['max_s']:.3f}", f"{r['late']}")
        for case, by_interval in f["results"].items()
        for interval, r in by_interval.items()
    ]
    header = ("case", "min_heartbeat_interval (s)", "median (s)", "max (s)", "late")
    return Report(
        "supervisor_exit_tail",
        "Task supervisor: exit noticed up to `min_heartbeat_interval` late",
        "Fork -> `ActivitySubprocess.wait()` returning. `linger`: the task process closes "
        f"its sockets {LINGER_S} s before it exits (the race, made deterministic: should take"
        f" {LINGER_S} s); `exit`: it returns at once, as every task does (should take a few "
        "ms). *Late* = at least 0.9x the interval (`[workers] min_heartbeat_interval`).",
        sections=[
            table(header, rows),
            "A fix in Airflow would wait on the process itself too (a pidfd in the selector, or "
            "`waitpid` with the remaining timeout once no socket is open). Until then "
            "`config/airflow.cfg` sets `[workers] min_heartbeat_interval = 1`; when `linger` "
            f"takes {LINGER_S} s under the default 5, drop that setting.",
        ],
        figures=f,
    )


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]))
        return 0
    sys.path.insert(0, str(Path(__file__).parent))  # the harness, imported only out here
    from harness import Arguments, publish

    parser = Arguments(__doc__, {"supervisor_exit_tail": report})
    parser.add_argument("--runs", type=int, default=20, help="runs of `exit` (`linger`: 3)")
    args = parser.parse_args(argv)
    samples = {
        case: {str(i): measure(case, i, runs) for i in INTERVALS}
        for case, runs in (("linger", 3), ("exit", args.runs))
    }
    results = {
        case: {
            i: {
                "median_s": round(statistics.median(s), 3),
                "max_s": round(max(s), 3),
                "late": f"{sum(x > 0.9 * int(i) for x in s)} of {len(s)}",
            }
            for i, s in by.items()
        }
        for case, by in samples.items()
    }
    publish(report({"linger_s": LINGER_S, "results": results}), args.results, samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
