"""The monitored DAG's latest run as one snapshot (run, task states, model metrics, failure
reason), and its recent history.

Read through Airflow's REST API v2 with a read-only account. Every route shares one
coalescing cache, so a burst of requests costs Airflow one round of calls per TTL window,
and a failed round is remembered for the window too. Requests arriving while the window's
round is in flight are answered with the previous snapshot; only the caller making the round
waits for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from adclick_contract import RESULT_TASK_ID, TRAINING_TAGS
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
from monitor.runs import RunDetails

log = logging.getLogger(__name__)


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
    """Snapshots of the latest run of ``dag_id`` and of its last ``history_limit`` runs, and a
    cheap reachability probe for /health."""

    def __init__(
        self,
        client: AirflowClient,
        dag_id: str,
        ttl: float,
        ui_url: str,
        result_task_id: str = RESULT_TASK_ID,
        health_timeout: float = 1.0,
        on_upstream_call: Callable[[str, str], None] | None = None,
        history_limit: int = 20,
    ) -> None:
        self.client = client
        self.dag_id = dag_id
        self.health_timeout = health_timeout
        self.history_limit = history_limit
        self.details = RunDetails(client, dag_id, ui_url, result_task_id, keep=2 * history_limit)
        # While a window's refresh is in flight, the others get the answer it replaces (for
        # up to one more TTL) instead of all stalling on it: that stall, once per window, set
        # the p99 under load. With ttl 0 nothing is served stale.
        self._snapshots = CoalescingCache(ttl, stale_for=ttl)
        self._probes = CoalescingCache(ttl, stale_for=ttl)
        self._histories = CoalescingCache(ttl, stale_for=ttl)
        self._training_dags = CoalescingCache(ttl, stale_for=ttl)
        self._on_upstream_call = on_upstream_call or (lambda call, outcome: None)
        # Waiters give up a little after the slowest round the leader could take.
        self._wait_limit = 4 * (client.timeout[0] + client.timeout[1]) + 1

    def lookup(self) -> Lookup:
        """The latest run's snapshot, or a StatusUnavailable error, and whether it was shared."""
        return self._shared(self._snapshots, self._fetch_snapshot)

    def history(self) -> Lookup:
        """``{"dag_id", "limit", "runs": [snapshot, ...] newest first, "fetched_at"}``."""
        return self._shared(self._histories, self._fetch_history)

    def training_dags(self) -> Lookup:
        """``{model name: dag id}`` of every training DAG (tagged ``TRAINING_TAGS`` and its
        model's name), this source's DAG among them."""
        return self._shared(self._training_dags, self._fetch_training_dags)

    def _shared(self, cache: CoalescingCache, fetch: Callable[[], dict]) -> Lookup:
        lookup = cache.lookup(fetch, self._wait_limit)
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

    def _fetch_history(self) -> dict:
        return self._call("history", self._read_history)

    def _fetch_training_dags(self) -> dict:
        return self._call("models", self._read_training_dags)

    def _read_training_dags(self) -> dict[str, str]:
        found = {model_name(dag): dag["dag_id"] for dag in self.client.dags_tagged(TRAINING_TAGS)}
        if self.dag_id not in found.values():  # shown whatever its tags say
            found.setdefault(self.dag_id, self.dag_id)
        return dict(sorted(found.items()))

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
        fetched_at = _now()
        run = self.client.latest_run(self.dag_id)
        if run is None:
            return self.details.empty(fetched_at)
        return self.details.of(run, fetched_at)

    def _read_history(self) -> dict:
        fetched_at = _now()
        runs = self.client.runs(self.dag_id, limit=self.history_limit)
        return {
            "dag_id": self.dag_id,
            "limit": self.history_limit,
            "runs": [self.details.of(run, fetched_at) for run in runs],
            "airflow_url": self.details.empty(fetched_at)["airflow_url"],
            "fetched_at": fetched_at,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def model_name(dag: dict) -> str:
    """The model a training DAG trains: its tag besides ``TRAINING_TAGS`` (the one its id
    starts with, if several), else its id."""
    tags = [t.get("name") for t in dag.get("tags") or [] if isinstance(t, dict)]
    names = [t for t in tags if isinstance(t, str) and t not in TRAINING_TAGS]
    dag_id = str(dag["dag_id"])
    return next((n for n in names if dag_id.startswith(n)), names[0] if names else dag_id)


class ModelSources:
    """A status source per training DAG, made when one of its model's pages is first asked
    for; only DAGs Airflow lists as training DAGs get one, so a URL cannot make more."""

    def __init__(self, default: StatusSource, make: Callable[[str], StatusSource]) -> None:
        self.default = default
        self._make = make
        self._lock = threading.Lock()
        self._sources: dict[str, StatusSource] = {default.dag_id: default}

    def models(self) -> dict[str, str]:
        """``{model name: dag id}``; raises StatusUnavailable."""
        return self.default.training_dags().unwrap()

    def source(self, name: str) -> StatusSource | None:
        """The status source of model ``name``; None when no training DAG has that name."""
        dag_id = self.models().get(name)
        if dag_id is None:
            return None
        with self._lock:
            if dag_id not in self._sources:
                self._sources[dag_id] = self._make(dag_id)
            return self._sources[dag_id]
