"""config/airflow_local_settings.py: the processes that fork tasks preload the ML libraries
with one BLAS thread each; a scheduler that runs no task (Celery) stays lean."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from embedded.stack import REPO_ROOT

# Imports Airflow as the named component would (its argv), then reports what it loaded.
PROBE = """
import json, sys
sys.argv = ["airflow", *sys.argv[1:]]
import airflow.settings  # imports airflow_local_settings
loaded = "sklearn.linear_model" in sys.modules
threads = []
if loaded:
    from threadpoolctl import threadpool_info
    threads = sorted({pool["num_threads"] for pool in threadpool_info()})
print(json.dumps({"preloaded": loaded, "threads": threads}))
"""


def component(tmp_path, executor: str, *argv: str) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "OPENBLAS", "OMP_", "MKL_", "MLFLOW"))
    }
    env.update(
        AIRFLOW_HOME=str(tmp_path),
        AIRFLOW_CONFIG=str(REPO_ROOT / "config" / "airflow.cfg"),
        AIRFLOW__CORE__EXECUTOR=executor,
        PYTHONPATH=str(REPO_ROOT / "config"),
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("executor", "argv"),
    [("LocalExecutor", ("scheduler",)), ("CeleryExecutor", ("celery", "worker"))],
)
def test_a_process_that_forks_tasks_preloads_them_with_one_blas_thread(
    tmp_path, executor: str, argv: tuple[str, ...]
) -> None:
    assert component(tmp_path, executor, *argv) == {"preloaded": True, "threads": [1]}


def test_a_celery_scheduler_runs_no_task_so_loads_no_ml_library(tmp_path) -> None:
    assert component(tmp_path, "CeleryExecutor", "scheduler") == {
        "preloaded": False,
        "threads": [],
    }
