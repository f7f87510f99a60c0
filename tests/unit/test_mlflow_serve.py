"""The MLflow server launcher refuses a configuration it cannot honour, before loading MLflow."""

from __future__ import annotations

import os
import subprocess

import pytest

from embedded.mlflow_server import MLFLOW_VENV, SERVE_SCRIPT


@pytest.mark.parametrize("value", [None, "true"])
def test_job_execution_must_be_off(value: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    if value is not None:
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = value
    done = subprocess.run(
        [str(MLFLOW_VENV / "bin" / "python"), str(SERVE_SCRIPT), "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false is required" in done.stderr
