"""Helpers the training tasks share: fail-fast errors and the run's working directory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adclick_airflow import settings


@contextmanager
def fail_fast() -> Iterator[None]:
    """Turn errors that a retry cannot fix (bad data, bad conf or settings, a rejected model, an
    artifact that must not be loaded) into a non-retryable failure whose message is the one
    the user needs to read."""
    from airflow.sdk.exceptions import AirflowFailException

    from adclick.errors import ArtifactError, ConfigError, DataValidationError, QualityGateError
    from adclick_airflow.trigger_conf import ConfError

    try:
        yield
    except (ArtifactError, ConfigError, ConfError, DataValidationError, QualityGateError) as exc:
        raise AirflowFailException(str(exc)) from exc


def create_run_workdir(dag_id: str, run_id: str) -> Path:
    """The run's working directory (see :func:`settings.run_workdir`), created if missing."""
    workdir = settings.run_workdir(dag_id, run_id)
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir
