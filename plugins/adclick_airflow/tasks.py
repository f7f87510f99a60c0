"""Helpers the training tasks share: conf checks, the run's working directory, fail-fast errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adclick_airflow import settings


@contextmanager
def fail_fast() -> Iterator[None]:
    """Turn errors that a retry cannot fix (bad data, bad conf, a rejected model) into a
    non-retryable failure whose message is the one the user needs to read."""
    from airflow.sdk.exceptions import AirflowFailException

    from adclick.errors import DataValidationError, QualityGateError

    try:
        yield
    except (DataValidationError, QualityGateError, settings.ConfError) as exc:
        raise AirflowFailException(str(exc)) from exc


def resolve_params(
    params: Mapping[str, Any], conf: Mapping[str, Any], allowed: Mapping[str, Any]
) -> Path:
    """Refuse unknown conf keys and return the dataset path, checked to be inside the data root."""
    settings.check_conf_keys(dict(conf), set(allowed))
    return settings.resolve_dataset(params["data_path"])


def prepare_workdir(dag_id: str, run_id: str) -> Path:
    workdir = settings.run_workdir(dag_id, run_id)
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir
