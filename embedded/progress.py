"""Progress of a DAG run, task by task, while the run command waits for it.

On a terminal one line is rewritten in place ("[3/7] build_model running, 12 s"); when the
output is a file or a pipe, a plain line is printed each time a task changes state. When the
run fails, the failing task and the error it raised (read from its log) are what to print.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from airflow_rest import (
    TERMINAL_STATES,
    AirflowClient,
    AirflowError,
    AirflowUnreachable,
    map_index_of,
)

DONE_STATES = frozenset({"success", "failed", "upstream_failed", "skipped", "removed"})


def _order(task: dict) -> tuple:
    return (task.get("start_date") or "~", str(task.get("task_id")), map_index_of(task))


def task_label(task: dict) -> str:
    """``build_model[2]`` for one instance of a mapped task, the task id for any other."""
    index = map_index_of(task)
    return f"{task.get('task_id')}[{index}]" if index >= 0 else str(task.get("task_id"))


def progress_line(tasks: list[dict], elapsed: float) -> str:
    """``[done/total] task state, N s``, naming the task that is queued or running now."""
    ordered = sorted(tasks, key=_order)
    done = sum(t.get("state") in DONE_STATES for t in ordered)
    active = [t for t in ordered if t.get("state") and t.get("state") not in DONE_STATES]
    now = f"{task_label(active[-1])} {active[-1]['state']}" if active else "waiting to start"
    return f"[{done}/{len(ordered)}] {now}, {elapsed:.0f} s"


def wait_with_progress(
    client: AirflowClient,
    dag_id: str,
    run_id: str,
    timeout: float,
    out: TextIO | None = None,
    poll: float = 0.5,
) -> dict:
    """Poll the run until it succeeds or fails, showing its tasks' progress on ``out``."""
    out = out or sys.stdout
    tty = out.isatty()
    started = time.monotonic()
    seen: dict[str, str | None] = {}  # by task_label
    while True:
        elapsed = time.monotonic() - started
        try:
            run = client.get_run(dag_id, run_id)
            tasks = client.task_instances(dag_id, run_id)
        except AirflowUnreachable:  # e.g. the api-server replacing a worker: wait it out
            if elapsed > timeout:
                raise
            time.sleep(poll)
            continue
        if tty:
            out.write(f"\r\x1b[2K{progress_line(tasks, elapsed)}")
        else:
            for task in sorted(tasks, key=_order):
                label, state = task_label(task), task.get("state")
                if state is not None and seen.get(label) != state:
                    out.write(f"  {label}: {state}{_took(task)}\n")
                seen[label] = state
        out.flush()
        if run["state"] in TERMINAL_STATES:
            if tty:
                out.write("\n")
            return run
        if elapsed > timeout:
            raise TimeoutError(f"{dag_id} run {run_id} still {run['state']} after {timeout:g} s")
        time.sleep(poll)


def _took(task: dict) -> str:
    duration = task.get("duration")
    return f" ({duration:.1f} s)" if isinstance(duration, int | float) and duration else ""


def failure_of(client: AirflowClient, dag_id: str, run_id: str) -> dict | None:
    """``{"task_id", "message"}`` of the first task that failed in the run, or None."""
    failed = [t for t in client.task_instances(dag_id, run_id) if t.get("state") == "failed"]
    if not failed:
        return None
    task = min(failed, key=_order)
    message = None
    try:
        error = client.task_error(
            dag_id, run_id, task["task_id"], task["try_number"], map_index_of(task)
        )
        message = error["message"] if error else None
    except AirflowError as exc:
        message = f"(its log could not be read: {exc})"
    return {"task_id": task_label(task), "message": message or "(its log records no error)"}
