"""A small client for Airflow 3's stable REST API v2, with JWT login.

Plain Python (requests only): the Flask monitor, the monitor DAG, the embedded stack runner and
the tests all talk to Airflow through this one class.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any
from urllib.parse import quote

import requests

TERMINAL_STATES = frozenset({"success", "failed"})
# Renew a token this long before it expires (at most a quarter of its lifetime), so a
# request never races the expiry.
TOKEN_RENEW_MARGIN_S = 30.0


class AirflowError(Exception):
    """Airflow answered, but not with what was asked for."""


class AirflowUnreachable(AirflowError):
    """No answer at all: connection refused, DNS failure or timeout."""


class AirflowAuthError(AirflowError):
    """The credentials were refused (401) or the account may not do this (403)."""


class AirflowNotFound(AirflowError):
    """The DAG, run or entry does not exist (404)."""


def _renew_at(token: str) -> float | None:
    """When to fetch a new token, from the JWT's ``iat``/``exp`` claims, read without
    verifying them (only the server verifies). None when the token says nothing."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        expires = float(claims["exp"])
        lifetime = expires - float(claims.get("iat", expires - 4 * TOKEN_RENEW_MARGIN_S))
    except (IndexError, KeyError, TypeError, ValueError):
        return None
    return expires - min(TOKEN_RENEW_MARGIN_S, lifetime / 4)


class AirflowClient:
    """Thread-safe REST API v2 client that logs in once and re-logs in on expiry or 401."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        timeout: float = 3.0,
        connect_timeout: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self.timeout = (connect_timeout or min(timeout, 3.0), timeout)
        self._session = requests.Session()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at: float | None = None
        self.logins = 0  # how many times a token was fetched: observable re-login behaviour

    def __repr__(self) -> str:
        return f"AirflowClient({self.base_url!r}, user={self.username!r})"

    # -- transport ------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{self.base_url}{path}"
        try:
            return self._session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            raise AirflowUnreachable(f"Airflow at {self.base_url} timed out: {exc}") from exc
        except requests.ConnectionError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else str(exc)
            raise AirflowUnreachable(f"Airflow unreachable at {self.base_url}: {reason}") from exc

    def _login(self) -> str:
        response = self._send(
            "POST", "/auth/token", json={"username": self.username, "password": self._password}
        )
        if response.status_code in (401, 403):
            raise AirflowAuthError(f"authentication failed for user {self.username!r}")
        if response.status_code not in (200, 201):
            raise AirflowError(f"login failed: HTTP {response.status_code} {response.text[:200]}")
        token = response.json()["access_token"]
        self._token, self._renew_at = token, _renew_at(token)
        self.logins += 1
        return token

    def _current_token(self, renew: bool = False) -> str:
        with self._lock:
            expiring = self._renew_at is not None and self._renew_at < time.time()
            if renew or self._token is None or expiring:
                return self._login()
            return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Authenticated call; one re-login when the token was refused; JSON body back."""
        token = self._current_token()
        response = self._send(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if response.status_code == 401:
            token = self._current_token(renew=True)
            response = self._send(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
        return self._decode(method, path, response)

    def _decode(self, method: str, path: str, response: requests.Response) -> Any:
        status = response.status_code
        if status in (401, 403):
            raise AirflowAuthError(
                f"{method} {path}: HTTP {status} for user {self.username!r}: {_detail(response)}"
            )
        if status == 404:
            raise AirflowNotFound(f"{method} {path}: not found")
        if status >= 400:
            raise AirflowError(f"{method} {path}: HTTP {status}: {_detail(response)}")
        return response.json() if response.content else None

    # -- API ------------------------------------------------------------------------------
    def health(self) -> dict:
        """``/api/v2/monitor/health`` needs no token. Read the body: it is 200 even when the
        scheduler is dead."""
        response = self._send("GET", "/api/v2/monitor/health")
        return self._decode("GET", "/api/v2/monitor/health", response)

    def get_dag(self, dag_id: str) -> dict:
        return self.request("GET", f"/api/v2/dags/{quote(dag_id, safe='')}")

    def dag_exists(self, dag_id: str) -> bool:
        try:
            self.get_dag(dag_id)
        except AirflowNotFound:
            return False
        return True

    def set_paused(self, dag_id: str, paused: bool) -> dict:
        return self.request(
            "PATCH", f"/api/v2/dags/{quote(dag_id, safe='')}", json={"is_paused": paused}
        )

    def runs(self, dag_id: str, limit: int = 25) -> list[dict]:
        """Newest first by ``run_after`` (``logical_date`` is null for REST-triggered runs)."""
        body = self.request(
            "GET",
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
            params={"order_by": "-run_after", "limit": limit},
        )
        return body["dag_runs"]

    def latest_run(self, dag_id: str) -> dict | None:
        runs = self.runs(dag_id, limit=1)
        return runs[0] if runs else None

    def get_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", self._run_path(dag_id, run_id))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        body = self.request("GET", f"{self._run_path(dag_id, run_id)}/taskInstances")
        return body["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """The XCom value, or None when the task pushed nothing (yet)."""
        path = (
            f"{self._run_path(dag_id, run_id)}/taskInstances/{quote(task_id, safe='')}"
            f"/xcomEntries/{quote(key, safe='')}"
        )
        try:
            entry = self.request("GET", path, params={"deserialize": "true"})
        except AirflowNotFound:
            return None
        value = entry.get("value")
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def trigger(self, dag_id: str, conf: dict | None = None) -> dict:
        return self.request(
            "POST",
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
            json={"logical_date": None, "conf": conf or {}},
        )

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, poll: float = 0.5) -> dict:
        """Poll until the run succeeds or fails; TimeoutError names the state it was stuck in."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get_run(dag_id, run_id)
            if run["state"] in TERMINAL_STATES:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{dag_id} run {run_id} still {run['state']} after {timeout:.0f} s"
                )
            time.sleep(poll)

    @staticmethod
    def _run_path(dag_id: str, run_id: str) -> str:
        return f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"


def _detail(response: requests.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    return str(detail)[:300]
