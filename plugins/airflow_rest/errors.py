"""What can go wrong when talking to Airflow, as exceptions callers can tell apart.

The messages are written for people (they end up on the monitor's pages and in task logs):
they name the URL or the user, never a stack trace.
"""

from __future__ import annotations


class AirflowError(Exception):
    """Airflow answered, but not with what was asked for."""


class AirflowUnreachable(AirflowError):
    """No answer at all: connection refused, DNS failure or timeout."""


class AirflowAuthError(AirflowError):
    """The credentials were refused (401) or the account may not do this (403)."""


class AirflowNotFound(AirflowError):
    """The DAG, run or entry does not exist (404)."""


class AirflowConflict(AirflowError):
    """What was to be created already exists (409)."""
