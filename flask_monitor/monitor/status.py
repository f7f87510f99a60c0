"""The monitored DAG's latest run as one snapshot: run, task states and model metrics.

Read through Airflow's REST API v2 with a read-only account. Every route shares one
coalescing cache, so a burst of requests costs Airflow one round of calls per TTL window,
and a failed round is remembered for the window too. Requests arriving while the window's
round is in flight are answered with the previous snapshot; only the caller making the round
waits for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote

from airflow_rest import (
    AirflowAuthError,
    AirflowClient,
    AirflowError,
    AirflowNotFound,
    AirflowUnreachable,
    CacheWaitTimeout,
    CoalescingCache,
    Lookup,
)

log = logging.getLogger(__name__)

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


class StatusUnavailable(Exception):
    """Airflow could not answer. ``cause`` is a short code for scripts, ``str()`` says why."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


def unavailable(exc: Exception) -> StatusUnavailable:
    """Name the cause of a failed round of calls in words an operator can act on."""
    if isinstance(exc, AirflowUnreachable):
        return StatusUnavailable("airflow_unreachable", str(exc))
    if isinstance(exc, AirflowAuthError):
        return StatusUnavailable("airflow_auth_failed", str(exc))
    if isinstance(exc, AirflowNotFound):
        return StatusUnavailable("dag_not_found", str(exc))
    if isinstance(exc, StatusUnavailable):
        return exc
    if isinstance(exc, CacheWaitTimeout):
        return StatusUnavailable("airflow_slow", f"Airflow is answering too slowly: {exc}")
    return StatusUnavailable("airflow_error", str(exc))


class StatusSource:
    """Snapshots of the latest run of ``dag_id``, and a cheap reachability probe for /health."""

    def __init__(
        self,
        client: AirflowClient,
        dag_id: str,
        ttl: float,
        ui_url: str,
        result_task_id: str = "load_model",
        health_timeout: float = 1.0,
        on_upstream_call: Callable[[str, str], None] | None = None,
    ) -> None:
        self.client = client
        self.dag_id = dag_id
        self.ui_url = ui_url.rstrip("/")
        self.result_task_id = result_task_id
        self.health_timeout = health_timeout
        # While a window's refresh is in flight, the others get the answer it replaces (for
        # up to one more TTL) instead of all stalling on it: that stall, once per window, set
        # the p99 under load. With ttl 0 nothing is served stale.
        self._snapshots = CoalescingCache(ttl, stale_for=ttl)
        self._probes = CoalescingCache(ttl, stale_for=ttl)
        self._on_upstream_call = on_upstream_call or (lambda call, outcome: None)
        # Waiters give up a little after the slowest round the leader could take.
        self._wait_limit = 4 * (client.timeout[0] + client.timeout[1]) + 1

    def lookup(self) -> Lookup:
        """The latest run's snapshot, or a StatusUnavailable error, and whether it was shared."""
        lookup = self._snapshots.lookup(self._fetch_snapshot, self._wait_limit)
        if isinstance(lookup.error, CacheWaitTimeout):
            return Lookup(None, unavailable(lookup.error), lookup.from_cache, lookup.stale)
        return lookup

    def airflow_health(self) -> dict:
        """``{"reachable", "error", "scheduler"}`` from Airflow's unauthenticated health
        endpoint, with a short timeout: /health must answer fast even when Airflow hangs."""
        lookup = self._probes.lookup(self._fetch_health, 2 * self.health_timeout + 1)
        if lookup.error is not None:
            error = unavailable(lookup.error)
            return {"reachable": error.cause != "airflow_unreachable", "error": str(error)}
        body = lookup.value
        scheduler = body.get("scheduler") if isinstance(body, dict) else None
        status = scheduler.get("status") if isinstance(scheduler, dict) else None
        return {"reachable": True, "error": None, "scheduler": status}

    def _fetch_health(self) -> dict:
        return self._call("health", lambda: self.client.health(timeout=self.health_timeout))

    def _fetch_snapshot(self) -> dict:
        return self._call("snapshot", self._read_latest_run)

    def _call(self, call: str, fetch: Callable[[], dict]) -> dict:
        try:
            result = fetch()
        except AirflowError as exc:
            error = unavailable(exc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.exception("unexpected answer from Airflow")
            error = StatusUnavailable(
                "airflow_error",
                f"unexpected answer from Airflow at {self.client.base_url}: {exc!r}",
            )
        else:
            self._on_upstream_call(call, "ok")
            return result
        self._on_upstream_call(call, error.cause)
        raise error

    def _read_latest_run(self) -> dict:
        fetched_at = datetime.now(UTC).isoformat(timespec="seconds")
        run = self.client.latest_run(self.dag_id)
        if run is None:
            return self._empty(fetched_at)
        run_id = run["dag_run_id"]
        tasks = [
            {k: t.get(k) for k in TASK_FIELDS}
            for t in self.client.task_instances(self.dag_id, run_id)
        ]
        tasks.sort(key=_task_order)
        return {
            "dag_id": self.dag_id,
            "run_id": run_id,
            **{k: run.get(k) for k in RUN_FIELDS},
            "tasks": tasks,
            **self._model_result(run_id, tasks),
            "airflow_url": f"{self.ui_url}/dags/{_segment(self.dag_id)}/runs/{_segment(run_id)}",
            "message": None,
            "fetched_at": fetched_at,
        }

    def _model_result(self, run_id: str, tasks: list[dict]) -> dict:
        """``metrics`` and ``model`` from the result task's XCom; None until it succeeded."""
        done = any(t["task_id"] == self.result_task_id and t["state"] == "success" for t in tasks)
        result = self.client.xcom(self.dag_id, run_id, self.result_task_id) if done else None
        if not isinstance(result, dict):
            return {"metrics": None, "model": None}
        metrics = result.get("metrics")
        return {
            "metrics": metrics if isinstance(metrics, dict) else None,
            "model": {"version": result.get("version"), "promoted": result.get("promoted")},
        }

    def _empty(self, fetched_at: str) -> dict:
        return {
            "dag_id": self.dag_id,
            "run_id": None,
            **dict.fromkeys(RUN_FIELDS),
            "tasks": [],
            "metrics": None,
            "model": None,
            "airflow_url": f"{self.ui_url}/dags/{_segment(self.dag_id)}",
            "message": "no runs yet",
            "fetched_at": fetched_at,
        }


def _task_order(task: dict) -> tuple:
    """Started tasks by start time, then the rest by id (Airflow's own order is arbitrary)."""
    map_index = task["map_index"] if isinstance(task["map_index"], int) else -1
    return (task["start_date"] or "~", str(task["task_id"]), map_index)


def _segment(value: str) -> str:
    return quote(str(value), safe="")
