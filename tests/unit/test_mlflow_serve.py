"""The MLflow server launcher refuses a configuration it cannot honour, before loading MLflow."""

from __future__ import annotations

import subprocess

import pytest

from embedded.mlflow_server import JOB_EXECUTION, MlflowServer


@pytest.mark.parametrize("value", [None, "true"])
def test_job_execution_must_be_off(tmp_path, value: str | None) -> None:
    server = MlflowServer(tmp_path, port=1)
    env = {k: v for k, v in server.env().items() if k != JOB_EXECUTION}
    if value is not None:
        env[JOB_EXECUTION] = value
    done = subprocess.run(server.command(), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{JOB_EXECUTION}=false is required" in done.stderr
