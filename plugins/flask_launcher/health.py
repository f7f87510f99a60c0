"""Is the Flask monitor answering? One ping, polling until it does, or (async) a probe for
code that runs in Airflow's triggerer.

Healthy means what the service's /health promises: HTTP 200 with ``"status": "ok"``. A port
that answers something else (another program, a half-started app) is not healthy.
"""

from __future__ import annotations

import json
import time

import requests

# A service that has been up this long and still does not answer /health within
# ANSWER_TIMEOUT_S is hung (deadlocked, stopped, paused), not booting: it gets replaced.
BOOT_TIMEOUT_S = 20.0
ANSWER_TIMEOUT_S = 1.0
# What a service being replaced gets to stop before it is killed: a hung one is not going to
# finish its requests anyway.
STOP_TIMEOUT_S = 2


def judge(status: int, content: bytes) -> dict:
    """``{"healthy", "status", "error", "body"}`` for one HTTP answer to /health."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    healthy = status == 200 and isinstance(body, dict) and body.get("status") == "ok"
    if healthy:
        error = None
    elif status != 200:
        error = f"HTTP {status}"
    else:
        error = "HTTP 200 but not the monitor's health answer"
    return {"healthy": healthy, "status": status, "error": error, "body": body}


def unanswered(error: str) -> dict:
    """The result for a ping that got no HTTP answer at all."""
    return {"healthy": False, "status": None, "error": error, "body": None}


def check_health(url: str, timeout: float = 2.0) -> dict:
    """``{"healthy", "status", "error", "body"}``; never raises."""
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return unanswered(_reason(exc))
    return judge(response.status_code, response.content)


async def check_health_async(url: str, timeout: float = 2.0, client=None) -> dict:
    """:func:`check_health` for asyncio code (Airflow triggers); never raises.

    A caller pinging repeatedly passes its own ``httpx.AsyncClient``: making one costs about
    20 ms of CPU (its TLS context), which would otherwise be paid on every ping.
    """
    import httpx  # the triggerer has it (Airflow depends on it); the Flask image needs none

    if client is None:
        async with httpx.AsyncClient() as own:
            return await check_health_async(url, timeout, own)
    try:
        response = await client.get(url, timeout=timeout)
    except httpx.TimeoutException as exc:
        return unanswered(f"timed out: {type(exc).__name__} after {timeout:g} s")
    except httpx.HTTPError as exc:
        return unanswered("connection refused" if _refused(exc) else f"{type(exc).__name__}: {exc}")
    return judge(response.status_code, response.content)


def _refused(exc: BaseException) -> bool:
    """httpx words it "All connection attempts failed"; the cause says what happened."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def wait_healthy(url: str, timeout: float, interval: float = 0.25) -> dict:
    """Poll until healthy or ``timeout`` seconds passed; the last check is returned."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        result = check_health(url, timeout=min(2.0, max(0.2, remaining)))
        if result["healthy"] or time.monotonic() + interval >= deadline:
            return result
        time.sleep(interval)


def answering(url: str, age: float) -> bool:
    """Does a service that started ``age`` seconds ago answer /health? A young one is given
    until ``BOOT_TIMEOUT_S`` after its start, any other ``ANSWER_TIMEOUT_S``."""
    return wait_healthy(url, timeout=max(ANSWER_TIMEOUT_S, BOOT_TIMEOUT_S - age))["healthy"]


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return f"timed out: {exc}"
    if isinstance(exc, requests.ConnectionError) and "refused" in str(exc).lower():
        return "connection refused"
    return f"{type(exc).__name__}: {exc}"
