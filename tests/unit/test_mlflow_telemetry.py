"""MLflow's usage reporting is off in every process of ours that loads MLflow: it starts as
MLflow is imported, so the setting must be in the environment before that."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from adclick.defaults import MLFLOW_NO_TELEMETRY
from embedded.stack import EmbeddedStack

# Records the reporting switch at the moment MLflow is first imported, then builds a tracker
# the way load_model and the command line do.
AT_IMPORT = """
import json, os, sys

seen = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "mlflow" and not seen:
            seen.append({key: os.environ.get(key) for key in json.loads(sys.argv[2])})
        return None

sys.meta_path.insert(0, Watch())
from adclick.tracking import Tracker, TrackingConfig

Tracker(TrackingConfig(sys.argv[1]))
print(json.dumps(seen))
"""


def test_a_tracker_switches_reporting_off_before_mlflow_is_imported(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in MLFLOW_NO_TELEMETRY}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            AT_IMPORT,
            f"sqlite:///{tmp_path / 'mlflow.db'}",
            json.dumps(list(MLFLOW_NO_TELEMETRY)),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == [MLFLOW_NO_TELEMETRY]


def test_the_embedded_stack_and_its_mlflow_server_run_with_reporting_off(tmp_path: Path) -> None:
    stack = EmbeddedStack(home=tmp_path / "airflow")
    for env in (stack.env, stack.mlflow_server.env()):
        assert {k: env.get(k) for k in MLFLOW_NO_TELEMETRY} == MLFLOW_NO_TELEMETRY
