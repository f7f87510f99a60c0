"""Runs started by new data on the embedded stack: waiting for the next asset-triggered run of
a DAG, and the documented REST example run as written."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from airflow_rest import AirflowClient
from testkit.waiting import wait_until

ASSET_TRIGGERED = "asset_triggered"
FENCE = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)


def asset_runs(client: AirflowClient, dag_id: str) -> set[str]:
    """The ids of ``dag_id``'s asset-triggered runs so far."""
    return {r["dag_run_id"] for r in client.runs(dag_id, 100) if r["run_type"] == ASSET_TRIGGERED}


def next_asset_run(
    client: AirflowClient, dag_id: str, before: set[str], timeout: float
) -> tuple[dict, float]:
    """The first asset-triggered run of ``dag_id`` not in ``before``, and when it was seen
    (``time.monotonic()``)."""

    def found() -> dict | None:
        runs = client.runs(dag_id, 100)
        fresh = [
            r for r in runs if r["run_type"] == ASSET_TRIGGERED and r["dag_run_id"] not in before
        ]
        return fresh[-1] if fresh else None

    run = wait_until(found, timeout, f"an asset-triggered run of {dag_id}", poll=0.5)
    return run, time.monotonic()


def documented_example(page: Path, marker: str, replacements: dict[str, str]) -> str:
    """The bash block of ``page`` holding ``marker``, each key of ``replacements`` (which must
    be in it: the page and the test stay one example) replaced by its value."""
    (block,) = [b for b in FENCE.findall(page.read_text()) if marker in b]
    for old, new in replacements.items():
        assert old in block, f"{page.name}'s example no longer says {old!r}"
        block = block.replace(old, new)
    return block


def run_bash(script: str, timeout: float = 60, *, check: bool = True) -> str | None:
    """Run ``script`` with bash, stopping at the first failing command: its output, or (with
    ``check`` off) None when it failed."""
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode and not check:
        return None
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr or done.stdout}"
    return done.stdout
