"""Airflow imports this module in every component at start-up (``config/`` is on its path).

Executors run each task in a process forked from a long-lived worker: the scheduler's
LocalExecutor workers, or a Celery worker's pool. Importing the ML libraries once in those
parents means no task pays the 1-2 s it takes to import pandas and scikit-learn again.
Other components (api-server, dag-processor, triggerer) are left lean.
"""

from __future__ import annotations

import sys


def _forks_task_processes(argv: list[str]) -> bool:
    return "scheduler" in argv or ("celery" in argv and "worker" in argv)


if _forks_task_processes(sys.argv[1:]):
    import joblib  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import sklearn.linear_model
    import sklearn.metrics
    import sklearn.model_selection
    import sklearn.pipeline
    import sklearn.preprocessing  # noqa: F401
