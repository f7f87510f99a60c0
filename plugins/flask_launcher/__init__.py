"""Keep the Flask monitor and the model service up: a health ping, and launchers that
(re)start them (:mod:`flask_launcher.services`).

Plain Python, no Airflow import: the monitor DAG calls it, and so can anybody else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from flask_launcher.health import check_health, check_health_async, wait_healthy
from flask_launcher.services import FLASK_MONITOR, MODEL_SERVER, SERVICES, Service

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


def launcher_from_env(env: Mapping[str, str], service: Service = FLASK_MONITOR) -> Launcher:
    """The service's launcher variable (``FLASK_LAUNCHER``, ``MODEL_SERVER_LAUNCHER``):
    ``process`` (default, the embedded stack) or ``docker`` (Compose).

    Imports lazily: the docker launcher is only loaded where it is used.
    """
    variable = service.launcher_variable
    kind = (env.get(variable) or "process").strip().lower()
    if kind == "process":
        from flask_launcher.process import ProcessLauncher

        return ProcessLauncher.from_env(env, service)
    if kind == "docker":
        from flask_launcher.docker import DockerLauncher

        return DockerLauncher.from_env(env, service)
    raise ValueError(f"{variable} must be one of {', '.join(LAUNCHERS)}, not {kind!r}")


__all__ = [
    "ALREADY_RUNNING",
    "FLASK_MONITOR",
    "MODEL_SERVER",
    "SERVICES",
    "Launcher",
    "Service",
    "check_health",
    "check_health_async",
    "launcher_from_env",
    "wait_healthy",
]
