"""Is the Flask monitor answering? One ping, or polling until it does."""

from __future__ import annotations

import time

import requests


def check_health(url: str, timeout: float = 2.0) -> dict:
    """``healthy`` only for a 200 whose JSON says ``"status": "ok"``; never raises."""
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return {
            "healthy": False,
            "status": None,
            "error": f"{type(exc).__name__}: {exc}",
            "body": None,
        }
    try:
        body = response.json()
    except ValueError:
        body = None
    healthy = response.status_code == 200 and isinstance(body, dict) and body.get("status") == "ok"
    error = None if healthy else f"HTTP {response.status_code}"
    return {"healthy": healthy, "status": response.status_code, "error": error, "body": body}


def wait_healthy(url: str, timeout: float, interval: float = 0.25) -> dict:
    """Poll until healthy or ``timeout`` seconds passed; the last check is returned."""
    deadline = time.monotonic() + timeout
    while True:
        result = check_health(url, timeout=min(2.0, max(0.5, timeout)))
        if result["healthy"] or time.monotonic() >= deadline:
            return result
        time.sleep(interval)
