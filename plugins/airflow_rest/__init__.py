"""Airflow REST API v2 client (plain Python, no Airflow import)."""

from airflow_rest.client import (
    AirflowAuthError,
    AirflowClient,
    AirflowError,
    AirflowNotFound,
    AirflowUnreachable,
)

__all__ = [
    "AirflowAuthError",
    "AirflowClient",
    "AirflowError",
    "AirflowNotFound",
    "AirflowUnreachable",
]
