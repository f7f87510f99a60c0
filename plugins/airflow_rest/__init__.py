"""Airflow REST API v2 client and a coalescing TTL cache (plain Python, no Airflow import)."""

from airflow_rest.cache import CacheWaitTimeout, CoalescingCache, Lookup
from airflow_rest.client import (
    DEFAULT_TIMEOUT_S,
    TERMINAL_STATES,
    AirflowClient,
    map_index_of,
)
from airflow_rest.errors import (
    AirflowAuthError,
    AirflowConflict,
    AirflowError,
    AirflowNotFound,
    AirflowUnreachable,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "TERMINAL_STATES",
    "AirflowAuthError",
    "AirflowClient",
    "AirflowConflict",
    "AirflowError",
    "AirflowNotFound",
    "AirflowUnreachable",
    "CacheWaitTimeout",
    "CoalescingCache",
    "Lookup",
    "map_index_of",
]
