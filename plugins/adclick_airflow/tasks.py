"""Helpers the model DAGs' tasks share: fail-fast errors, the run's working directory, and
the MLflow tracker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adclick.tracking import RunContext, Tracker

from adclick_airflow import settings


@contextmanager
def fail_fast() -> Iterator[None]:
    """Turn errors that a retry cannot fix (bad data, bad conf or settings, a rejected model, an
    artifact that must not be loaded) into a non-retryable failure whose message is the one
    the user needs to read."""
    from airflow.sdk.exceptions import AirflowFailException

    from adclick.contract import ContractError
    from adclick.errors import (
        ArtifactError,
        ConfigError,
        DataValidationError,
        FitError,
        ModelNotFoundError,
        QualityGateError,
    )
    from adclick_airflow.trigger_conf import ConfError

    try:
        yield
    except (
        ArtifactError,
        ConfigError,
        ConfError,
        ContractError,
        DataValidationError,
        FitError,
        ModelNotFoundError,
        QualityGateError,
    ) as exc:
        raise AirflowFailException(str(exc)) from exc


def create_run_workdir(dag_id: str, run_id: str) -> Path:
    """The run's working directory (see :func:`settings.run_workdir`), created if missing."""
    workdir = settings.run_workdir(dag_id, run_id)
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def training_tracker(
    dag_id: str, model_name: str, run_id: str, try_number: int
) -> tuple[Tracker | None, RunContext | None]:
    """The MLflow tracker of model ``model_name`` (None when ``MLFLOW_TRACKING_URI`` is
    unset) and what identifies this run (of its training or its scoring DAG) to it, with a
    link back to the run."""
    from adclick.tracking import RunContext, TrackingConfig

    config = TrackingConfig.from_env(model_name=model_name)
    if config is None:
        return None, None
    from adclick.tracking import Tracker
    from adclick_airflow.notify import links

    context = RunContext(
        run_id=run_id,
        dag_id=dag_id,
        try_number=int(try_number or 1),
        run_url=links(dag_id, run_id).airflow,
    )
    return Tracker(config), context
