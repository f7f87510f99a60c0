"""A small client for Airflow 3's stable REST API v2, with JWT login.

Plain Python (requests only): the Flask monitor, the monitor DAG, the embedded stack runner and
the tests all talk to Airflow through this one class, so they all fail the same clear way.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from airflow_rest.errors import (
    AirflowAuthError,
    AirflowConflict,
    AirflowError,
    AirflowNotFound,
    AirflowUnreachable,
)
from airflow_rest.token import renew_at

TERMINAL_STATES = frozenset({"success", "failed"})

DEFAULT_TIMEOUT_S = 3.0  # per call; the monitor's MONITOR_AIRFLOW_TIMEOUT default
# Answers worth one more try: the api-server rolled back (e.g. SQLite's "database is locked"
# under concurrent writers) or a proxy in front of it hiccuped. Only requests that are safe to
# repeat are retried.
RETRY_STATUSES = frozenset({500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
# What Airflow says when it cannot use a token at all (bad signature, revoked): a 403 that a
# fresh login cures, unlike the plain "Forbidden" of an account lacking the permission.
_REJECTED_TOKEN_DETAIL = "Invalid JWT token"


class AirflowClient:
    """Thread-safe REST API v2 client: logs in once, reuses the Bearer token, renews it shortly
    before its ``exp`` and once more whenever the server refuses it (401, or 403 for a token
    it can no longer verify, e.g. after a restart with a new JWT secret)."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        timeout: float = DEFAULT_TIMEOUT_S,
        connect_timeout: float | None = None,
        retries: int = 2,
        retry_backoff: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.username = username
        self._password = password
        self.timeout = (connect_timeout or min(timeout, 3.0), timeout)
        self._session = requests.Session()
        # Many gunicorn threads share one client: keep a connection for each of them.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=32)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at: float | None = None

    def __repr__(self) -> str:
        return f"AirflowClient({self.base_url!r}, user={self.username!r})"

    # -- transport ------------------------------------------------------------------------
    def _send(
        self, method: str, path: str, timeout: float | None = None, **kwargs: Any
    ) -> requests.Response:
        limits = self.timeout if timeout is None else (min(timeout, self.timeout[0]), timeout)
        try:
            return self._session.request(
                method, f"{self.base_url}{path}", timeout=limits, allow_redirects=False, **kwargs
            )
        except requests.Timeout as exc:
            what = "connection" if isinstance(exc, requests.ConnectTimeout) else "answer"
            raise self._unreachable(f"no {what} within {limits[1]:g} s") from None
        except requests.ConnectionError as exc:
            raise self._unreachable(_connection_problem(exc)) from None
        except requests.RequestException as exc:
            raise AirflowError(f"request to {self.base_url}{path} failed: {exc}") from None

    def _unreachable(self, reason: str) -> AirflowUnreachable:
        return AirflowUnreachable(f"airflow unreachable at {self.base_url}: {reason}")

    def _login(self) -> str:
        response = self._send(
            "POST", "/auth/token", json={"username": self.username, "password": self._password}
        )
        if response.status_code in (401, 403):
            raise AirflowAuthError(
                f"authentication failed for user {self.username} at {self.base_url}: "
                f"HTTP {response.status_code} {_detail(response)}"
            )
        body = self._decode("POST", "/auth/token", response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise AirflowError(f"POST {self.base_url}/auth/token: no access_token in the answer")
        self._token, self._renew_at = token, renew_at(token)
        return token

    def _valid_token(self) -> str:
        with self._lock:
            expiring = self._renew_at is not None and self._renew_at < time.time()
            if self._token is None or expiring:
                return self._login()
            return self._token

    def _replace_token(self, refused: str) -> str:
        """Log in again unless another thread already replaced the refused token."""
        with self._lock:
            if self._token is not None and self._token != refused:
                return self._token
            return self._login()

    def request(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Authenticated call with the JSON answer decoded; one re-login if the token was
        refused, and up to ``retries`` more tries on a 5xx when the call is safe to repeat
        (``idempotent``, by default true for every method but POST). ``path`` starts at the
        server root, e.g. ``/api/v2/dags``."""
        repeatable = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
        attempts = 1 + (self.retries if repeatable else 0)
        for attempt in range(attempts):
            response = self._authorized(method, path, timeout, **kwargs)
            if response.status_code not in RETRY_STATUSES or attempt == attempts - 1:
                break
            time.sleep(self.retry_backoff * 2**attempt)
        return self._decode(method, path, response)

    def _authorized(
        self, method: str, path: str, timeout: float | None, **kwargs: Any
    ) -> requests.Response:
        headers = kwargs.pop("headers", None) or {}

        def send(token: str) -> requests.Response:
            bearer = {**headers, "Authorization": f"Bearer {token}"}
            return self._send(method, path, timeout, headers=bearer, **kwargs)

        token = self._valid_token()
        response = send(token)
        return send(self._replace_token(token)) if _token_refused(response) else response

    def _decode(self, method: str, path: str, response: requests.Response) -> Any:
        status = response.status_code
        where = f"{method} {self.base_url}{path}"
        if status in (401, 403):
            raise AirflowAuthError(
                f"{where}: HTTP {status} for user {self.username}: {_detail(response)}"
            )
        if status == 404:
            raise AirflowNotFound(f"{where}: not found: {_detail(response)}")
        if status == 409:
            raise AirflowConflict(f"{where}: already exists: {_detail(response)}")
        if status >= 300:
            location = response.headers.get("Location")
            extra = f" (redirect to {location}; is this the api-server?)" if location else ""
            raise AirflowError(f"{where}: HTTP {status}: {_detail(response)}{extra}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise AirflowError(
                f"{where}: HTTP {status} but not JSON; is {self.base_url} an Airflow api-server?"
            ) from None

    # -- API ------------------------------------------------------------------------------
    def health(self, timeout: float | None = None) -> dict:
        """``/api/v2/monitor/health`` needs no token. Read the body: it is 200 even when the
        scheduler is dead."""
        path = "/api/v2/monitor/health"
        return self._decode("GET", path, self._send("GET", path, timeout))

    def get_dag(self, dag_id: str) -> dict:
        return self.request("GET", _dag_path(dag_id))

    def dag_exists(self, dag_id: str) -> bool:
        try:
            self.get_dag(dag_id)
        except AirflowNotFound:
            return False
        return True

    def dags_tagged(self, tags: Sequence[str], limit: int = 100) -> list[dict]:
        """The DAGs that carry every one of ``tags`` (not the stale ones: their file is gone),
        by dag id."""
        body = self.request(
            "GET",
            "/api/v2/dags",
            params={"tags": list(tags), "tags_match_mode": "all", "limit": limit},
        )
        return [dag for dag in body["dags"] if not dag.get("is_stale")]

    def set_paused(self, dag_id: str, paused: bool) -> dict:
        return self.request("PATCH", _dag_path(dag_id), json={"is_paused": paused})

    def runs(self, dag_id: str, limit: int = 25) -> list[dict]:
        """Newest first by ``run_after``: ``logical_date`` is null for REST-triggered runs and
        nulls sort differently on SQLite and Postgres."""
        body = self.request(
            "GET",
            f"{_dag_path(dag_id)}/dagRuns",
            params={"order_by": "-run_after", "limit": limit},
        )
        return body["dag_runs"]

    def latest_run(self, dag_id: str) -> dict | None:
        runs = self.runs(dag_id, limit=1)
        return runs[0] if runs else None

    def get_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", _run_path(dag_id, run_id))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """Every task instance of the run (task_id, state, start/end_date, duration, try)."""
        body = self.request("GET", f"{_run_path(dag_id, run_id)}/taskInstances")
        return body["task_instances"]

    def task_log_events(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> list[dict | str]:
        """The whole log of one try of a task (of one instance of a mapped task) as Airflow
        stores it: structured events (``event``, ``level``, ``timestamp``, ``error_detail``,
        ...) and plain lines."""
        path = f"{_task_path(dag_id, run_id, task_id)}/logs/{try_number}"
        params = {"full_content": "true", **_map_index(map_index)}
        body = self.request("GET", path, params=params, headers={"Accept": "application/json"})
        content = body.get("content") if isinstance(body, dict) else None
        return content if isinstance(content, list) else []

    def task_error(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> dict[str, str] | None:
        """``{"type", "message"}`` of the exception that ended this try, as the task raised
        it (the last error its log records), or None when the log records none."""
        return last_error(self.task_log_events(dag_id, run_id, task_id, try_number, map_index))

    def xcom(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        key: str = "return_value",
        map_index: int = -1,
    ) -> Any:
        """The XCom value as the task (that instance of a mapped task) returned it, or None
        when it pushed nothing (yet)."""
        path = f"{_task_path(dag_id, run_id, task_id)}/xcomEntries/{quote(key, safe='')}"
        try:  # native JSON, not the stringified form
            entry = self.request("GET", path, params=_map_index(map_index) or None)
        except AirflowNotFound:
            return None
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def trigger(self, dag_id: str, conf: dict | None = None, run_id: str | None = None) -> dict:
        """A manual run now. ``logical_date`` must be present (null); unknown keys give 422.

        The run id is chosen here (Airflow's own ``manual__<time>`` form unless given), which
        makes a retried trigger safe: a repeat that finds the run already there returns it.
        """
        run_id = run_id or f"manual__{datetime.now(UTC).isoformat()}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}}
        path = f"{_dag_path(dag_id)}/dagRuns"
        try:
            return self.request("POST", path, json=body, idempotent=True)
        except AirflowConflict:
            existing = self.get_run(dag_id, run_id)  # an earlier try created it
            if existing.get("conf") != body["conf"]:
                raise
            return existing

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, poll: float = 0.5) -> dict:
        """Poll until the run succeeds or fails; TimeoutError names the state it was stuck in."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get_run(dag_id, run_id)
            if run["state"] in TERMINAL_STATES:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{dag_id} run {run_id} still {run['state']} after {timeout:g} s"
                )
            time.sleep(poll)


def _dag_path(dag_id: str) -> str:
    return f"/api/v2/dags/{quote(dag_id, safe='')}"


def _run_path(dag_id: str, run_id: str) -> str:
    return f"{_dag_path(dag_id)}/dagRuns/{quote(run_id, safe='')}"


def map_index_of(task_instance: Mapping[str, Any]) -> int:
    """Which instance of a mapped task a task instance is; -1 for an unmapped task."""
    value = task_instance.get("map_index")
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _map_index(map_index: int) -> dict[str, int]:
    """The query naming one instance of a mapped task; none for an unmapped one (-1)."""
    return {"map_index": map_index} if map_index >= 0 else {}


def _task_path(dag_id: str, run_id: str, task_id: str) -> str:
    return f"{_run_path(dag_id, run_id)}/taskInstances/{quote(task_id, safe='')}"


def last_error(events: list[dict | str]) -> dict[str, str] | None:
    """The exception of the last error event in a task log. Its ``error_detail`` lists the
    raised exception first, then what it was raised from: the first is what the task said."""
    for event in reversed(events):
        details = event.get("error_detail") if isinstance(event, dict) else None
        raised = next((d for d in details or () if isinstance(d, dict)), None)
        if isinstance(details, list) and raised is not None:
            return {
                "type": str(raised.get("exc_type") or "Exception"),
                "message": str(raised.get("exc_value") or ""),
            }
    return None


def _token_refused(response: requests.Response) -> bool:
    if response.status_code == 401:
        return True
    return response.status_code == 403 and _detail(response) == _REJECTED_TOKEN_DETAIL


def _detail(response: requests.Response) -> str:
    """FastAPI's ``detail``, or the start of the body: enough to say why, never a page."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason or ""
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return str(detail)[:300]


def _connection_problem(exc: requests.ConnectionError) -> str:
    """A short reason from requests' nested connection errors."""
    text = str(exc)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "resolve" in lowered or "name or service not known" in lowered:
        return "host name not found (DNS)"
    if "timed out" in lowered:
        return "connection timed out"
    if "aborted" in lowered or "reset" in lowered or "remotedisconnected" in lowered:
        return "connection closed without an answer"
    return text[:200]
