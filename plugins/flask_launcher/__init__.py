"""Keep the Flask monitor up: a health ping, and launchers that (re)start it.

Plain Python, no Airflow import: the monitor DAG calls it, and so can anybody else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from flask_launcher.health import check_health, check_health_async, wait_healthy

LAUNCHERS = ("process", "docker")
# What ensure_running answers when the service was up and nothing had to be done.
ALREADY_RUNNING = "already-running"


class Launcher(Protocol):
    def ensure_running(self) -> str:
        """``already-running``, ``started`` or ``restarted``; never two instances."""
        ...

    def describe(self) -> str: ...

    def instance_key(self) -> str | None:
        """What the service it started proves on /health (None: nothing to prove)."""
        ...


def launcher_from_env(env: Mapping[str, str]) -> Launcher:
    """``FLASK_LAUNCHER=process`` (default, the embedded stack) or ``docker`` (Compose).

    Imports lazily: the docker launcher is only loaded where it is used.
    """
    kind = (env.get("FLASK_LAUNCHER") or "process").strip().lower()
    if kind == "process":
        from flask_launcher.process import ProcessLauncher

        return ProcessLauncher.from_env(env)
    if kind == "docker":
        from flask_launcher.docker import DockerLauncher

        return DockerLauncher.from_env(env)
    raise ValueError(f"FLASK_LAUNCHER must be one of {', '.join(LAUNCHERS)}, not {kind!r}")


__all__ = [
    "ALREADY_RUNNING",
    "Launcher",
    "check_health",
    "check_health_async",
    "launcher_from_env",
    "wait_healthy",
]
