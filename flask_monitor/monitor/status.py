"""The monitored DAG's latest run as one snapshot: run, task states and model metrics.

Fetched through Airflow's REST API v2 with a read-only account and shared by every route
through the coalescing cache.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from airflow_rest import AirflowAuthError, AirflowClient, AirflowError, AirflowUnreachable
from monitor.cache import CoalescingCache

RUN_FIELDS = (
    "dag_run_id",
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
TASK_FIELDS = ("task_id", "state", "start_date", "end_date", "duration", "try_number")


class StatusUnavailable(Exception):
    """Airflow could not answer: ``cause`` is a short code, ``str()`` the explanation."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause


def describe_error(exc: AirflowError) -> StatusUnavailable:
    if isinstance(exc, AirflowUnreachable):
        return StatusUnavailable("airflow_unreachable", str(exc))
    if isinstance(exc, AirflowAuthError):
        return StatusUnavailable("airflow_auth_failed", str(exc))
    return StatusUnavailable("airflow_error", str(exc))


class StatusSource:
    def __init__(
        self,
        client: AirflowClient,
        dag_id: str,
        ttl: float,
        ui_url: str,
        result_task_id: str = "load_model",
        on_upstream_call: Any = None,
    ) -> None:
        self.client = client
        self.dag_id = dag_id
        self.ui_url = ui_url.rstrip("/")
        self.result_task_id = result_task_id
        self.cache = CoalescingCache(ttl)
        self._on_upstream_call = on_upstream_call or (lambda outcome: None)

    def snapshot(self) -> tuple[dict, bool]:
        """``(snapshot, from_cache)``; raises StatusUnavailable when Airflow cannot answer."""
        return self.cache.get(self._fetch)

    def _fetch(self) -> dict:
        try:
            snapshot = self._fetch_from_airflow()
        except AirflowError as exc:
            error = describe_error(exc)
            self._on_upstream_call(error.cause)
            raise error from None
        self._on_upstream_call("ok")
        return snapshot

    def _fetch_from_airflow(self) -> dict:
        fetched_at = datetime.now(UTC).isoformat()
        run = self.client.latest_run(self.dag_id)
        if run is None:
            return {
                "dag_id": self.dag_id,
                "state": None,
                "message": "no runs yet",
                "fetched_at": fetched_at,
            }
        run_id = run["dag_run_id"]
        tasks = [
            {k: t.get(k) for k in TASK_FIELDS}
            for t in self.client.task_instances(self.dag_id, run_id)
        ]
        result = self.client.xcom(self.dag_id, run_id, self.result_task_id)
        result = result if isinstance(result, dict) else {}
        return {
            "dag_id": self.dag_id,
            **{k: run.get(k) for k in RUN_FIELDS},
            "run_id": run_id,
            "tasks": sorted(tasks, key=lambda t: t.get("start_date") or "~"),
            "metrics": result.get("metrics"),
            "model": {k: result.get(k) for k in ("version", "promoted")} if result else None,
            "airflow_url": f"{self.ui_url}/dags/{quote(self.dag_id)}/runs/{quote(run_id, safe='')}",
            "fetched_at": fetched_at,
        }
