"""The gunicorn services a launcher keeps up: the Flask monitor and the model service.

Each names its app, its process title, where its gunicorn.conf.py is, which of the caller's
environment it gets, and the prefix of its launcher settings (``<PREFIX>_PIDFILE``,
``_LOGFILE``, ``_BIND``, ``_PYTHON``, ``_STOP_TIMEOUT``, ``_HEALTH_URL``, ``_CONTAINER``):
FLASK_MONITOR_PIDFILE, FLASK_MONITOR_LOGFILE, FLASK_MONITOR_BIND, FLASK_MONITOR_PYTHON,
FLASK_MONITOR_STOP_TIMEOUT, FLASK_MONITOR_HEALTH_URL, FLASK_MONITOR_CONTAINER (its launcher:
FLASK_LAUNCHER), and for the model service MODEL_SERVER_PIDFILE,
MODEL_SERVER_LOGFILE, MODEL_SERVER_BIND, MODEL_SERVER_PYTHON, MODEL_SERVER_STOP_TIMEOUT,
MODEL_SERVER_HEALTH_URL, MODEL_SERVER_CONTAINER; its launcher is MODEL_SERVER_LAUNCHER.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adclick_contract import (
    FLASK_MONITOR_BIND,
    FLASK_MONITOR_SERVICE,
    MODEL_SERVER_BIND,
    MODEL_SERVER_SERVICE,
)
from adclick_contract.instance import INSTANCE_KEY_VARIABLE


@dataclass(frozen=True)
class Service:
    title: str  # in messages
    env_prefix: str  # of the launcher's settings for it
    launcher_variable: str  # "process" or "docker"
    package: str  # the installed package of the app
    app_spec: str
    proc_name: str  # gunicorn.conf.py's proc_name, in the master's title
    default_bind: str
    compose_service: str
    instance_key_variable: str
    passed_prefixes: tuple[str, ...]  # the caller's variables the service gets, besides basics
    conf_in_package: bool  # gunicorn.conf.py inside the package's folder, or beside it

    def setting(self, env: Mapping[str, str], name: str) -> str | None:
        """``<PREFIX>_<name>`` from ``env``; None when unset or empty."""
        return env.get(f"{self.env_prefix}_{name}") or None

    def app_dir(self) -> Path:
        """The folder that holds the package: the service's working directory (never the
        package's own, whose modules would shadow top-level ones of the same name)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"the {self.package} package is not installed for {sys.executable}")
        return Path(spec.origin).parents[1]

    def conf_file(self) -> Path:
        """The service's gunicorn.conf.py."""
        folder = self.app_dir() / self.package if self.conf_in_package else self.app_dir()
        return folder / "gunicorn.conf.py"


FLASK_MONITOR = Service(
    title="Flask monitor",
    env_prefix="FLASK_MONITOR",
    launcher_variable="FLASK_LAUNCHER",
    package="monitor",
    app_spec="monitor:create_app()",
    proc_name="flask-monitor",
    default_bind=FLASK_MONITOR_BIND,
    compose_service=FLASK_MONITOR_SERVICE,
    instance_key_variable=INSTANCE_KEY_VARIABLE,
    passed_prefixes=("MONITOR_", "FLASK_MONITOR_"),
    conf_in_package=False,
)
MODEL_SERVER = Service(
    title="model server",
    env_prefix="MODEL_SERVER",
    launcher_variable="MODEL_SERVER_LAUNCHER",
    package="model_server",
    app_spec="model_server:create_app()",
    proc_name="model-server",
    default_bind=MODEL_SERVER_BIND,
    compose_service=MODEL_SERVER_SERVICE,
    instance_key_variable="MODEL_SERVER_INSTANCE_KEY",
    # The registries may be in an object store: its endpoint and keys (read by botocore).
    passed_prefixes=("MODEL_SERVER_", "AWS_"),
    conf_in_package=True,
)
SERVICES = {service.env_prefix: service for service in (FLASK_MONITOR, MODEL_SERVER)}
