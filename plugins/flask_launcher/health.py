"""Is the Flask monitor answering? One ping, or polling until it does.

Healthy means what the service's /health promises: HTTP 200 with ``"status": "ok"``. A port
that answers something else (another program, a half-started app) is not healthy.
"""

from __future__ import annotations

import time

import requests


def check_health(url: str, timeout: float = 2.0) -> dict:
    """``{"healthy", "status", "error", "body"}``; never raises."""
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return {"healthy": False, "status": None, "error": _reason(exc), "body": None}
    try:
        body = response.json()
    except ValueError:
        body = None
    healthy = response.status_code == 200 and isinstance(body, dict) and body.get("status") == "ok"
    if healthy:
        error = None
    elif response.status_code != 200:
        error = f"HTTP {response.status_code}"
    else:
        error = "HTTP 200 but not the monitor's health answer"
    return {"healthy": healthy, "status": response.status_code, "error": error, "body": body}


def wait_healthy(url: str, timeout: float, interval: float = 0.25) -> dict:
    """Poll until healthy or ``timeout`` seconds passed; the last check is returned."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        result = check_health(url, timeout=min(2.0, max(0.2, remaining)))
        if result["healthy"] or time.monotonic() + interval >= deadline:
            return result
        time.sleep(interval)


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return f"timed out: {exc}"
    if isinstance(exc, requests.ConnectionError) and "refused" in str(exc).lower():
        return "connection refused"
    return f"{type(exc).__name__}: {exc}"
