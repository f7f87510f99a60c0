"""The command line, run as a user runs it: ``python -m adclick`` in a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def adclick(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m adclick ARGS`` with this environment (plus ``env``); output as text."""
    return subprocess.run(
        [sys.executable, "-m", "adclick", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=180,
    )
