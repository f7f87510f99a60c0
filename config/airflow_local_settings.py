"""Airflow imports this module in every component at start-up (``config/`` is on its path).

Executors run each task in a process forked from a long-lived worker: the scheduler's
LocalExecutor workers, or a Celery worker's pool. Importing the ML libraries once in those
parents means no task pays the 1-2 s it takes to import pandas and scikit-learn again.
Other components (api-server, dag-processor, triggerer) are left lean. Only third-party
libraries are preloaded: the project's own modules are imported fresh by every task, so an
edit to them takes effect without restarting anything.
"""

from __future__ import annotations

import os
import sys

# Storage roots that are object-store URLs (adclick.storage): their client is preloaded too.
_ROOT_VARIABLES = ("ADCLICK_DATA_DIR", "ADCLICK_MODEL_DIR", "ADCLICK_ARTIFACT_DIR")


def _forks_task_processes(argv: list[str]) -> bool:
    if "celery" in argv and "worker" in argv:
        return True
    # A scheduler forks tasks only through the LocalExecutor; with Celery it runs none.
    from airflow.configuration import conf

    return "scheduler" in argv and "LocalExecutor" in conf.get("core", "executor")


if _forks_task_processes(sys.argv[1:]):
    # One BLAS/OpenMP thread per task process, set before numpy loads its libraries. Tasks
    # run side by side (a worker's slots, mapped candidates, several workers on one host),
    # and a library's threads per task on the same cores contend: two 1M-row fits at once
    # took 1.5x as long each with the default two threads, 1.1x with one.
    for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_threads, "1")
    # The libraries the ML steps use, and what pandas' Parquet I/O and scikit-learn's input
    # checks import on first use (without those, every task process pays for them again:
    # about half of a step's time).
    # Every task parses its DAG file again; the training DAG's TriggerDagRunOperator brings in
    # the standard provider (about 50 modules), most of each parse when not preloaded.
    import airflow.providers.standard.operators.trigger_dagrun  # noqa: F401
    import sklearn.linear_model
    import sklearn.metrics
    import sklearn.model_selection
    import sklearn.pipeline
    import sklearn.preprocessing  # noqa: F401

    if any("://" in os.environ.get(name, "") for name in _ROOT_VARIABLES):
        # botocore, aiohttp and s3fs: about 2 s of imports each task would pay again
        import s3fs  # noqa: F401
        import upath.implementations.cloud  # noqa: F401
    # The MLflow client load_model records runs with (a second or more to import), when
    # tracking is on.
    if os.environ.get("MLFLOW_TRACKING_URI"):
        import mlflow.data.pandas_dataset
        import mlflow.models
        import mlflow.sklearn  # noqa: F401
        from mlflow.utils import requirements_utils

        # log_model checks the model's pinned requirements against the installed packages,
        # after mapping every installed distribution to its modules (about 1.3 s over
        # Airflow's packages); the map is kept per process, so it is made once here.
        # Guarded: it is MLflow's internal helper, and a start-up must not depend on it.
        warm_up = getattr(requirements_utils, "_init_packages_to_modules_map", None)
        if warm_up is not None:
            warm_up()
        # What a run's start and log_model import on first use (about 0.15 s per load_model:
        # GitPython for the run's source tags, the model's serving environment, the tracing
        # exporter). MLflow's internal modules, so one that is gone is skipped.
        import contextlib
        import importlib

        for _module in (
            "git",
            "mlflow.tracking.request_header.registry",
            "mlflow.pyfunc.scoring_server",
            "mlflow.pyfunc.utils.environment",
            "mlflow.tracing.processor.otel",
        ):
            with contextlib.suppress(ImportError):
                importlib.import_module(_module)
