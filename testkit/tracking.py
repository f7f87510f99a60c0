"""An MLflow tracker whose server is down, without disturbing the tests that run after it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from adclick.tracking import URI_VARIABLES, Tracker, TrackingConfig
from testkit.ports import free_port


@contextlib.contextmanager
def unreachable_tracker(model_name: str) -> Iterator[tuple[Tracker, str]]:
    """A tracker for an address nothing listens on, and that address.

    A tracker points MLflow's process-wide tracking and registry URIs at its server (the
    fluent API reads them): they are put back after, or a later test's client that names only
    a tracking URI would look for the registry at the dead address.
    """
    import mlflow

    uris = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    environment = {name: os.environ.get(name) for name in URI_VARIABLES}
    nowhere = f"http://127.0.0.1:{free_port()}"
    try:
        yield Tracker(TrackingConfig(nowhere, model_name=model_name)), nowhere
    finally:
        mlflow.set_tracking_uri(uris[0])
        mlflow.set_registry_uri(uris[1])
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
