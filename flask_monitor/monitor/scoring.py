"""A model's latest scoring batches: the runs of its scoring DAG (tagged ``SCORING_TAGS`` and
the model's name), each with what its scoring and drift tasks returned: input, rows, model
version, state, share of drifted columns, where the predictions and report are, and the
report in MLflow when the batch was tracked there.

A finished run never changes, so its row is read once and kept (the most recent ones); runs
still going are read again in every cache window, which one coalescing cache per model shares
between requests.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from adclick_contract import (
    DRIFT_TASK_ID,
    DRIFT_TRACKING_TASK_ID,
    PREDICTIONS_DIR,
    SCORING_TAGS,
    SCORING_TASK_ID,
)
from airflow_rest import TERMINAL_STATES, AirflowClient, AirflowError, CoalescingCache, Lookup
from monitor.charts import Point, is_number, line_chart
from monitor.filters import when
from monitor.runs import http_link
from monitor.status import unavailable

BATCHES_SHOWN = 10
KEEP_FINISHED = 200


class ScoringBatches:
    """The last ``limit`` scoring runs of each model, read through ``client``."""

    def __init__(
        self,
        client: AirflowClient,
        ttl: float,
        ui_url: str,
        limit: int = BATCHES_SHOWN,
        on_upstream_call: Callable[[str, str], None] | None = None,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.ui_url = ui_url.rstrip("/")
        self.limit = limit
        self._on_upstream_call = on_upstream_call or (lambda call, outcome: None)
        self._lock = threading.Lock()
        self._caches: dict[str, CoalescingCache] = {}
        self._finished: OrderedDict[tuple[str, str], dict] = OrderedDict()
        self._wait_limit = 4 * (client.timeout[0] + client.timeout[1]) + 1

    def lookup(self, model: str) -> Lookup:
        """``{"model", "dag_id", "batches": [...] newest first, "fetched_at"}``, or the
        :class:`StatusUnavailable` error."""
        with self._lock:
            cache = self._caches.setdefault(model, CoalescingCache(self.ttl, stale_for=self.ttl))
        lookup = cache.lookup(lambda: self._fetch(model), self._wait_limit)
        if lookup.error is not None:
            return Lookup(None, unavailable(lookup.error), lookup.from_cache, lookup.stale)
        return lookup

    def _fetch(self, model: str) -> dict:
        try:
            found = self._read(model)
        except (AirflowError, KeyError, TypeError, ValueError) as exc:
            error = unavailable(exc)
            self._on_upstream_call("scoring", error.cause)
            raise error from None
        self._on_upstream_call("scoring", "ok")
        return found

    def _read(self, model: str) -> dict:
        fetched_at = datetime.now(UTC).isoformat(timespec="seconds")
        dag_id = self._scoring_dag(model)
        runs = self.client.runs(dag_id, limit=self.limit) if dag_id else []
        return {
            "model": model,
            "dag_id": dag_id,
            "batches": [self._batch(dag_id, run) for run in runs] if dag_id else [],
            "fetched_at": fetched_at,
        }

    def _scoring_dag(self, model: str) -> str | None:
        for dag in self.client.dags_tagged([*SCORING_TAGS, model]):
            return str(dag["dag_id"])
        return None

    def _batch(self, dag_id: str, run: dict) -> dict:
        key = (dag_id, run["dag_run_id"])
        with self._lock:
            if key in self._finished:
                return self._finished[key]
        batch = self._read_batch(dag_id, run)
        if run.get("state") in TERMINAL_STATES:
            with self._lock:
                self._finished[key] = batch
                while len(self._finished) > KEEP_FINISHED:
                    self._finished.popitem(last=False)
        return batch

    def _read_batch(self, dag_id: str, run: dict) -> dict:
        run_id = run["dag_run_id"]
        scored = _mapping(self._xcom(dag_id, run_id, SCORING_TASK_ID))
        report = _mapping(self._xcom(dag_id, run_id, DRIFT_TASK_ID)) if scored else {}
        tracked = _mapping(self._xcom(dag_id, run_id, DRIFT_TRACKING_TASK_ID)) if report else {}
        conf = _mapping(run.get("conf"))
        return {
            "run_id": run_id,
            "state": run.get("state"),
            "when": run.get("end_date") or run.get("start_date") or run.get("run_after"),
            "input": conf.get("input") or _name(scored.get("input")),
            "rows": scored.get("rows"),
            "model_version": scored.get("model_version"),
            "predictions": _data_path(scored.get("parquet")),
            "drift_share": report.get("share"),
            "drift": report.get("drift"),
            "drifted_columns": report.get("drifted_columns") or [],
            "report": _data_path(report.get("html")),
            "report_url": http_link(tracked.get("report_url")),
            "airflow_url": f"{self.ui_url}/dags/{quote(dag_id, safe='')}/runs/"
            f"{quote(run_id, safe='')}",
        }

    def _xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        return self.client.xcom(dag_id, run_id, task_id)  # None when the task pushed none


def drift_chart(batches: list[dict]) -> Markup:
    """The share of drifted columns per batch (``batches`` newest first), in percent, oldest to
    latest; a batch without a report (not scored, or its version has no reference sample) is
    a cross under the plot, never a 0. Each point links to its batch's row of the page."""
    points = []
    for position, batch in reversed(list(enumerate(batches))):
        share = batch.get("drift_share")
        value = float(share) * 100 if is_number(share) else None
        state = str(batch.get("state") or "none")
        shown = f"{value:.0f}% drifted" if value is not None else "no drift report"
        points.append(
            Point(
                run_id=str(batch["run_id"]),
                state=state,
                value=value,
                label=f"{batch.get('input') or batch['run_id']}\n"
                f"{when(batch.get('when'))} · {state} · {shown}",
                href=f"#{batch_anchor(position)}",
            )
        )
    return line_chart(
        "drift",
        "Share of drifted columns per batch in percent (a cross: no drift report)",
        points,
        floor=0.0,
        ceiling=100.0,
        unit="%",
    )


def batch_anchor(position: int) -> str:
    """The id of the row of the batch at ``position`` (0: the newest) on the scoring page."""
    return f"batch-{position}"


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _name(path: Any) -> str | None:
    return str(path).rstrip("/").rsplit("/", 1)[-1] if path else None


def _data_path(path: Any) -> str | None:
    """A file under the data root as pages show it: from ``predictions/`` on, so nobody
    reading the page learns the server's directories."""
    if not isinstance(path, str) or not path:
        return None
    _, found, tail = path.rpartition(f"/{PREDICTIONS_DIR}/")
    return f"{PREDICTIONS_DIR}/{tail}" if found else _name(path)
