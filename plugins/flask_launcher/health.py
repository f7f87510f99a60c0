"""Is the Flask monitor answering? One ping, polling until it does, or (async) a probe for
code that runs in Airflow's triggerer.

Healthy means what the service's /health promises: HTTP 200 with ``"status": "ok"``. A port
that answers something else (another program, a half-started app) is not healthy. Given the
instance key its launcher made (``Launcher.instance_key``), a ping also sends a fresh
challenge, and only the service that holds the key answers it (:mod:`adclick_contract.instance`):
another program that took the port is down, however it answers.
"""

from __future__ import annotations

import json
import secrets
import time
from urllib.parse import urlencode

import requests

from adclick_contract.instance import CHALLENGE_PARAMETER, proves

# A service that has been up this long and still does not answer /health within
# ANSWER_TIMEOUT_S is hung (deadlocked, stopped, paused), not booting: it gets replaced.
BOOT_TIMEOUT_S = 20.0
ANSWER_TIMEOUT_S = 1.0
# What a service being replaced gets to stop before it is killed: a hung one is not going to
# finish its requests anyway.
STOP_TIMEOUT_S = 2


FOREIGN = "answered, but not by the monitor its launcher started (no proof of its instance key)"


def judge(status: int, content: bytes, key: str | None = None, challenge: str = "") -> dict:
    """``{"healthy", "status", "error", "body"}`` for one HTTP answer to /health; with
    ``key``, only an answer that proves ``challenge`` under it is healthy."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    healthy = status == 200 and isinstance(body, dict) and body.get("status") == "ok"
    if healthy:
        error = None
        if key is not None and not proves(key, challenge, body.get("proof")):
            healthy = False
            error = FOREIGN
    elif status != 200:
        error = f"HTTP {status}"
    else:
        error = "HTTP 200 but not the monitor's health answer"
    return {"healthy": healthy, "status": status, "error": error, "body": body}


def challenged(url: str, key: str | None) -> tuple[str, str]:
    """``url`` with a fresh challenge added when there is a key to prove, and the challenge."""
    if key is None:
        return url, ""
    challenge = secrets.token_hex(16)
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({CHALLENGE_PARAMETER: challenge})}", challenge


def unanswered(error: str) -> dict:
    """The result for a ping that got no HTTP answer at all."""
    return {"healthy": False, "status": None, "error": error, "body": None}


def check_health(url: str, timeout: float = 2.0, key: str | None = None) -> dict:
    """``{"healthy", "status", "error", "body"}``; never raises."""
    asked, challenge = challenged(url, key)
    try:
        response = requests.get(asked, timeout=timeout)
    except requests.RequestException as exc:
        return unanswered(_reason(exc))
    return judge(response.status_code, response.content, key, challenge)


async def check_health_async(
    url: str, timeout: float = 2.0, client=None, key: str | None = None
) -> dict:
    """:func:`check_health` for asyncio code (Airflow triggers); never raises.

    A caller pinging repeatedly passes its own ``httpx.AsyncClient``: making one costs about
    20 ms of CPU (its TLS context), which would otherwise be paid on every ping.
    """
    import httpx  # the triggerer has it (Airflow depends on it); the Flask image needs none

    if client is None:
        async with httpx.AsyncClient() as own:
            return await check_health_async(url, timeout, own, key)
    asked, challenge = challenged(url, key)
    try:
        response = await client.get(asked, timeout=timeout)
    except httpx.TimeoutException as exc:
        return unanswered(f"timed out: {type(exc).__name__} after {timeout:g} s")
    except httpx.HTTPError as exc:
        return unanswered("connection refused" if _refused(exc) else f"{type(exc).__name__}: {exc}")
    return judge(response.status_code, response.content, key, challenge)


def _refused(exc: BaseException) -> bool:
    """httpx words it "All connection attempts failed"; the cause says what happened."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def wait_healthy(url: str, timeout: float, interval: float = 0.25, key: str | None = None) -> dict:
    """Poll until healthy or ``timeout`` seconds passed; the last check is returned."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        result = check_health(url, timeout=min(2.0, max(0.2, remaining)), key=key)
        if result["healthy"] or time.monotonic() + interval >= deadline:
            return result
        time.sleep(interval)


def answering(url: str, age: float, key: str | None = None) -> bool:
    """Does a service that started ``age`` seconds ago answer /health (proving ``key``)? A
    young one is given until ``BOOT_TIMEOUT_S`` after its start, any other
    ``ANSWER_TIMEOUT_S``."""
    timeout = max(ANSWER_TIMEOUT_S, BOOT_TIMEOUT_S - age)
    return wait_healthy(url, timeout=timeout, key=key)["healthy"]


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return f"timed out: {exc}"
    if isinstance(exc, requests.ConnectionError) and "refused" in str(exc).lower():
        return "connection refused"
    return f"{type(exc).__name__}: {exc}"
