"""The command line, run as a user runs it: ``python -m adclick`` in a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def adclick(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m adclick ARGS`` with this environment minus MLflow's client settings
    (a session's MLflow server is no business of a test that did not ask for it), plus
    ``env``; output as text."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "adclick", *map(str, args)],
        capture_output=True,
        text=True,
        env={**inherited, **(env or {})},
        timeout=180,
    )
