"""Where a DAG run's time goes, task by task, from REST API timestamps and the task logs.

For each task of a run (in the order they ran), in seconds:

* ``gap``: the previous task's end (the run's start for the first) -> scheduled
  (the scheduler noticing that the upstream task is done);
* ``queued``: scheduled -> queued (the scheduler handing it to the executor);
* ``pickup``: queued -> started (the executor's worker picking it up and forking the task
  process; ``start_date`` is set when the supervisor reports the start);
* ``startup``: started -> the task's ``execute`` begins (task runner start, DAG file parse,
  context); ``parse`` is the DAG file parse alone, as the task runner logs it;
* ``body``: ``execute`` itself;
* ``finish``: ``execute`` returned -> ``end_date`` (XCom push, reporting success);
* ``exit_tail``: ``end_date`` -> the supervisor done with the task (it has noticed the
  process exit), from the executor's log; the task's executor slot is held meanwhile.

``gap + queued + pickup + startup + body + finish`` over the chain, plus the run's own
``close`` (last task's end -> run end), is the run's duration.
"""

from __future__ import annotations

import re
import statistics
from datetime import datetime

from airflow_rest import map_index_of
from embedded.progress import task_label

SEGMENTS = ("gap", "queued", "pickup", "startup", "parse", "body", "finish", "exit_tail")
# On the critical path of a chain (``parse`` is part of ``startup``; ``exit_tail`` overlaps
# the next task's gap).
CHAIN_SEGMENTS = ("gap", "queued", "pickup", "startup", "body", "finish")
WORKLOAD_FINISHED = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z?).*Workload finished.*?workload_id=(?P<id>[\w-]+)"
)


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return round((later - earlier).total_seconds(), 3)


def supervisor_done_times(executor_log: str) -> dict[str, datetime]:
    """``{ti_id: when the supervisor finished}`` from its "Workload finished" log lines."""
    return {m["id"]: _ts(m["ts"]) for m in WORKLOAD_FINISHED.finditer(executor_log)}


def log_marks(
    client, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
) -> dict:
    """The task log's own timestamps: execute begins and ends, and the DAG parse time."""
    marks: dict = {}
    in_pre_execute = False
    for item in client.task_log_events(dag_id, run_id, task_id, try_number, map_index):
        if not isinstance(item, dict) or "timestamp" not in item:
            continue
        event, when = str(item.get("event", "")), _ts(item["timestamp"])
        if event == "::group::Pre Execute":
            in_pre_execute = True
        elif event == "::endgroup::" and in_pre_execute:
            marks["execute_start"], in_pre_execute = when, False
        elif event == "::group::Post Execute":
            marks.setdefault("execute_end", when)
        elif event == "Worker startup parse complete":
            marks["parse_s"] = round(float(item.get("dag_file_parse_ms", 0)) / 1000, 3)
    return marks


def run_timeline(
    client, dag_id: str, run_id: str, supervisor_done: dict[str, datetime] | None = None
) -> dict:
    """Per-task segments of one run and the run's ``close``."""
    run = client.get_run(dag_id, run_id)
    tis = sorted(
        client.task_instances(dag_id, run_id),
        key=lambda t: t.get("scheduled_when") or t.get("start_date") or "",
    )
    previous_end = _ts(run.get("start_date"))
    tasks = []
    for ti in tis:
        scheduled, queued = _ts(ti.get("scheduled_when")), _ts(ti.get("queued_when"))
        started, ended = _ts(ti.get("start_date")), _ts(ti.get("end_date"))
        marks = log_marks(client, dag_id, run_id, ti["task_id"], ti["try_number"], map_index_of(ti))
        done = (supervisor_done or {}).get(ti["id"])
        tasks.append(
            {
                "task_id": task_label(ti),
                "gap": _seconds(scheduled, previous_end),
                "queued": _seconds(queued, scheduled),
                "pickup": _seconds(started, queued),
                "startup": _seconds(marks.get("execute_start"), started),
                "parse": marks.get("parse_s"),
                "body": _seconds(marks.get("execute_end"), marks.get("execute_start")),
                "finish": _seconds(ended, marks.get("execute_end")),
                "exit_tail": _seconds(done, ended),
            }
        )
        previous_end = ended or previous_end
    return {"tasks": tasks, "close": _seconds(_ts(run.get("end_date")), previous_end)}


def median_timeline(timelines: list[dict]) -> dict:
    """Median of every segment of every task over runs, plus per-segment chain totals."""
    per_task: dict[str, dict[str, list[float]]] = {}
    for timeline in timelines:
        for task in timeline["tasks"]:
            row = per_task.setdefault(task["task_id"], {s: [] for s in SEGMENTS})
            for segment in SEGMENTS:
                if task[segment] is not None:
                    row[segment].append(task[segment])
    tasks = {
        task_id: {s: round(statistics.median(v), 3) if v else None for s, v in row.items()}
        for task_id, row in per_task.items()
    }
    closes = [t["close"] for t in timelines if t["close"] is not None]
    totals = {s: round(sum(t[s] or 0 for t in tasks.values()), 3) for s in SEGMENTS}
    totals["close"] = round(statistics.median(closes), 3) if closes else 0.0
    return {"tasks": tasks, "totals": totals}


def markdown(dag_id: str, timeline: dict) -> str:
    header = "| task | " + " | ".join(SEGMENTS) + " |\n|" + " --- |" * (len(SEGMENTS) + 1)
    rows = [
        f"| {task_id} | " + " | ".join(_fmt(v[s]) for s in SEGMENTS) + " |"
        for task_id, v in timeline["tasks"].items()
    ]
    totals = timeline["totals"]
    rows.append("| **sum** | " + " | ".join(f"**{_fmt(totals[s])}**" for s in SEGMENTS) + " |")
    return (
        f"`{dag_id}`, median per task (s); run close (last task end -> run end): "
        f"{_fmt(totals['close'])} s\n\n{header}\n" + "\n".join(rows) + "\n"
    )


def difference(ml: dict, control: dict) -> dict[str, float]:
    """Per-segment chain totals of ``ml`` minus those of ``control``."""
    keys = (*SEGMENTS, "close")
    return {k: round(ml["totals"][k] - control["totals"][k], 3) for k in keys}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
