"""One run of the monitored DAG as the pages show it: the run, its tasks, the model it
registered and, when it failed, which task failed and why.

A finished run's tasks, model and failure never change, so they are read from Airflow once
and kept (for the most recent runs, bounded); only runs still in progress are read again in
every cache window. That keeps the cost of the history page to one call per window once its
runs are known, whatever the traffic.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from urllib.parse import quote

import result_views
from adclick_contract import (
    APPROVAL_AWAITING,
    APPROVAL_TASK_ID,
    AWAITING_INPUT_STATE,
    RESULT_TASK_ID,
    SETTLED_RESULT_TASK_ID,
)
from airflow_rest import TERMINAL_STATES, AirflowClient, AirflowError, map_index_of

RUN_FIELDS = (
    "state",
    "run_after",
    "queued_at",
    "start_date",
    "end_date",
    "duration",
    "run_type",
    "triggered_by",
    "conf",
    "note",
)
TASK_FIELDS = ("task_id", "map_index", "state", "try_number", "start_date", "end_date", "duration")
FAILED_TASK_STATES = ("failed",)
MLFLOW_FIELDS = ("run_id", "experiment_id", "model_name", "model_version", "run_url", "version_url")
MLFLOW_LINKS = ("run_url", "version_url")
# What a run without a registered model shows of the result (the shared result format).
NO_RESULT = {
    "metrics": None,
    "model": None,
    "task": None,
    "labels": None,
    "class_names": None,
    "gate": None,
}


# The state the pages show for a run that succeeded and kept the champion (its model lost the
# comparison, was rejected, or waited in vain): neither a success's green nor a failure's red.
KEPT = "kept"


def outcome(state: object, model: object) -> str:
    """What the pages call the run: Airflow's state, or :data:`KEPT`."""
    promoted = model.get("promoted") if isinstance(model, dict) else None
    return KEPT if state == "success" and promoted is False else str(state or "none")


class RunDetails:
    """Builds the page data of a run from its REST API record, reading what else it needs."""

    def __init__(
        self,
        client: AirflowClient,
        dag_id: str,
        ui_url: str,
        result_task_id: str = RESULT_TASK_ID,
        keep: int = 100,
    ) -> None:
        self.client = client
        self.dag_id = dag_id
        self.ui_url = ui_url.rstrip("/")
        self.result_task_id = result_task_id
        self.keep = keep
        self._lock = threading.Lock()
        self._finished: OrderedDict[tuple, dict] = OrderedDict()

    def of(self, run: dict, fetched_at: str) -> dict:
        """The page data of ``run`` (one item of Airflow's dagRuns list)."""
        run_id = run["dag_run_id"]
        return {
            "dag_id": self.dag_id,
            "run_id": run_id,
            **{k: run.get(k) for k in RUN_FIELDS},
            **(parts := self._parts(run)),
            "outcome": outcome(run.get("state"), parts["model"]),
            "airflow_url": self.run_url(run_id),
            "message": None,
            "fetched_at": fetched_at,
        }

    def empty(self, fetched_at: str) -> dict:
        """What the pages show before the DAG's first run."""
        return {
            "dag_id": self.dag_id,
            "run_id": None,
            **dict.fromkeys(RUN_FIELDS),
            "tasks": [],
            **NO_RESULT,
            "approval": None,
            "failure": None,
            "outcome": None,
            "airflow_url": f"{self.ui_url}/dags/{_segment(self.dag_id)}",
            "message": "no runs yet",
            "fetched_at": fetched_at,
        }

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url}/dags/{_segment(self.dag_id)}/runs/{_segment(run_id)}"

    def task_url(self, run_id: str, task_id: str, try_number: object, map_index: int = -1) -> str:
        """The task's page in the Airflow UI (one instance's, for a mapped task), which opens
        on its log (as ``ti.log_url``)."""
        tries = f"?try_number={try_number}" if isinstance(try_number, int) and try_number else ""
        mapped = f"/mapped/{map_index}" if map_index >= 0 else ""
        return f"{self.run_url(run_id)}/tasks/{_segment(task_id)}{mapped}{tries}"

    def answer_url(self, run_id: str) -> str:
        """Where a person answers the run's approval: its "Required actions" in the UI."""
        return f"{self.run_url(run_id)}/tasks/{_segment(APPROVAL_TASK_ID)}/required_actions"

    # -- tasks, model, failure -------------------------------------------------------------
    def _parts(self, run: dict) -> dict:
        key = (run["dag_run_id"], run.get("state"), run.get("end_date"))
        finished = run.get("state") in TERMINAL_STATES
        if finished:
            with self._lock:
                if key in self._finished:
                    self._finished.move_to_end(key)
                    return self._finished[key]
        parts = self._read_parts(run["dag_run_id"], run.get("state"))
        if finished:
            with self._lock:
                self._finished[key] = parts
                while len(self._finished) > self.keep:
                    self._finished.popitem(last=False)
        return parts

    def _read_parts(self, run_id: str, state: str | None) -> dict:
        tasks = [
            {k: t.get(k) for k in TASK_FIELDS}
            for t in self.client.task_instances(self.dag_id, run_id)
        ]
        tasks.sort(key=_task_order)
        parts = {
            "tasks": tasks,
            **self._model_result(run_id, tasks),
            "approval": self._approval(run_id, tasks),
            "failure": self._failure(run_id, tasks) if state == "failed" else None,
        }
        settled = parts["approval"] or {}
        if isinstance(settled.get("promoted"), bool) and parts["model"]:
            parts["model"] = {**parts["model"], "promoted": settled["promoted"]}
        return parts

    def _approval(self, run_id: str, tasks: list[dict]) -> dict | None:
        """A person's sign-off of the run's model: waiting (with where to answer), or the
        answer ``record_approval`` returned (who, when, promoted or not); None when nobody
        was asked."""
        states = {t["task_id"]: t["state"] for t in tasks}
        if states.get(APPROVAL_TASK_ID) == AWAITING_INPUT_STATE:
            return {"state": APPROVAL_AWAITING, "answer_url": self.answer_url(run_id)}
        if states.get(APPROVAL_TASK_ID) != "success":
            return None
        if states.get(SETTLED_RESULT_TASK_ID) != "success":
            return None
        result = self.client.xcom(self.dag_id, run_id, SETTLED_RESULT_TASK_ID)
        answer = result.get("approval") if isinstance(result, dict) else None
        if not isinstance(answer, dict):
            return None
        # XCom can be edited by an admin: plain values only.
        kept = {k: answer.get(k) for k in ("state", "by", "at") if isinstance(answer.get(k), str)}
        timeout = answer.get("timeout_hours")
        if isinstance(timeout, int | float) and not isinstance(timeout, bool):
            kept["timeout_hours"] = timeout
        promoted = result.get("promoted")
        return {**kept, "promoted": promoted if isinstance(promoted, bool) else None}

    def _model_result(self, run_id: str, tasks: list[dict]) -> dict:
        """The result task's XCom (the shared result format): ``metrics``, ``model``,
        ``task``, ``labels``, ``class_names`` and ``gate``; None until it succeeded."""
        done = any(t["task_id"] == self.result_task_id and t["state"] == "success" for t in tasks)
        result = self.client.xcom(self.dag_id, run_id, self.result_task_id) if done else None
        if not isinstance(result, dict):
            return dict(NO_RESULT)
        metrics = result.get("metrics")
        name = result.get("model")
        return {
            "metrics": metrics if isinstance(metrics, dict) else None,
            "model": {
                "name": name if isinstance(name, str) else None,
                "version": result.get("version"),
                "promoted": result.get("promoted"),
                "promotion": result_views.promotion_line(result.get("promotion")),
                "mlflow": _mlflow(result.get("mlflow")),
            },
            "task": result_views.task_of(result),
            "labels": _plain_list(result.get("labels")),
            "class_names": _plain_list(result.get("class_names")),
            "gate": _gate(result),
        }

    def _failure(self, run_id: str, tasks: list[dict]) -> dict | None:
        """The first task that failed (by start time) and the error its log ends with."""
        failed = next((t for t in tasks if t["state"] in FAILED_TASK_STATES), None)
        if failed is None:
            return None
        task_id, try_number = str(failed["task_id"]), failed["try_number"]
        map_index = map_index_of(failed)
        error, log_problem = None, None
        if isinstance(try_number, int) and try_number > 0:
            try:
                error = self.client.task_error(self.dag_id, run_id, task_id, try_number, map_index)
            except AirflowError as exc:  # the reason is extra: the page still shows the run
                log_problem = f"its log could not be read: {exc}"
        return {
            "task_id": task_id,
            "try_number": try_number,
            "error_type": error["type"] if error else None,
            "message": error["message"] if error else None,
            "log_problem": log_problem,
            "log_url": self.task_url(run_id, task_id, try_number, map_index),
        }


def _mlflow(tracked: object) -> dict | None:
    """The MLflow run and model version the run recorded (None when it was not tracked).

    XCom can be edited by an admin: only plain strings are kept, and links only when they are
    http(s), so a page never renders a ``javascript:`` link from it.
    """
    if not isinstance(tracked, dict):
        return None
    kept = {k: tracked.get(k) for k in MLFLOW_FIELDS if isinstance(tracked.get(k), str)}
    for key in MLFLOW_LINKS:
        kept[key] = http_link(kept.get(key))
    kept["champion"] = tracked.get("passed") is True
    return kept


def http_link(value: object) -> str | None:
    """``value`` when it is an http(s) URL, else None: links from XCom (which an admin can
    edit) never become ``javascript:`` links on a page."""
    return value if isinstance(value, str) and value.startswith(("http://", "https://")) else None


def _plain_list(values: object) -> list | None:
    """Class labels or names: a list of strings and numbers, else None."""
    if not isinstance(values, list):
        return None
    return values if all(isinstance(v, str | int | float) for v in values) else None


def _gate(result: dict) -> dict | None:
    """``{"metric", "min" or "max", "passed"}``, whichever way the result records it."""
    gate = result_views.gate_of(result)
    if gate is None:
        return None
    return {"metric": gate["metric"], gate["bound"]: gate["threshold"], "passed": gate["passed"]}


def _task_order(task: dict) -> tuple:
    """Started tasks by start time, then the rest by id (Airflow's own order is arbitrary)."""
    return (task["start_date"] or "~", str(task["task_id"]), map_index_of(task))


def _segment(value: str) -> str:
    return quote(str(value), safe="")
