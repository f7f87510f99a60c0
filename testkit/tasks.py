"""What tests and benchmarks read of a run's tasks: their states together, a try's log as text."""

from __future__ import annotations

import json

from airflow_rest import AirflowClient

# The seven tasks every training DAG started with, in order: their ids never change.
SEED_TASKS = (
    "load_data",
    "data_preprocessing",
    "separate_data_outputs",
    "build_model",
    "load_model",
    "send_email",
    "trigger_monitor",
)
# Every training DAG's tasks, in order: the approval's between load_model and send_email.
TRAINING_CHAIN = (
    *SEED_TASKS[:5],
    "approve_promotion",
    "promote_approved",
    "record_approval",
    *SEED_TASKS[5:],
)
# A run that asks nobody for approval skips these, and every other task succeeds.
SKIPPED_WITHOUT_APPROVAL = {"approve_promotion": "skipped", "promote_approved": "skipped"}

# Which state of a mapped task's instances stands for the task: the first of these present
# (one failure fails it, one instance still at work keeps it going, all done is success).
MAPPED_STATE_ORDER = (
    "failed",
    "upstream_failed",
    "up_for_retry",
    "restarting",
    "running",
    "deferred",
    "queued",
    "scheduled",
    "up_for_reschedule",
    None,
    "skipped",
    "success",
    "removed",
)


def combined_state(states: list[str | None]) -> str | None:
    """The state a mapped task's instances show together (:data:`MAPPED_STATE_ORDER`); an
    unmapped task's own state. Airflow has more states than the order names: any other is
    taken as it is."""
    unknown = [s for s in states if s not in MAPPED_STATE_ORDER]
    if unknown:
        return unknown[0]
    return min(states, key=MAPPED_STATE_ORDER.index) if states else None


def task_states(client: AirflowClient, dag_id: str, run_id: str) -> dict[str, str | None]:
    """``{task_id: state}`` of the run; a mapped task's instances (one per ``map_index``)
    stand together as one state (see :func:`combined_state`)."""
    states: dict[str, list[str | None]] = {}
    for t in client.task_instances(dag_id, run_id):
        states.setdefault(t["task_id"], []).append(t["state"])
    return {task_id: combined_state(found) for task_id, found in states.items()}


def task_log(
    client: AirflowClient,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int,
    map_index: int = -1,
) -> str:
    """The whole log of one try of a task, as text (one line per log event)."""
    lines = []
    for item in client.task_log_events(dag_id, run_id, task_id, try_number, map_index):
        if isinstance(item, dict):
            extra = {k: v for k, v in item.items() if k not in ("event", "timestamp", "level")}
            fields = json.dumps(extra, default=str) if extra else ""
            lines.append(" ".join(filter(None, [str(item.get("event", "")), fields])))
        else:
            lines.append(str(item))
    return "\n".join(lines)
