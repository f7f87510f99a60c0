"""What the run command shows while it waits for a training run on the real embedded stack:
a plain line per task state change when its output is not a terminal, one line rewritten in
place on a terminal (a real pseudo-terminal), and on failure the failing task and its error."""

from __future__ import annotations

import io
import os
import re
import shutil
import threading

import pytest

from embedded.__main__ import failure_lines
from embedded.progress import failure_of, wait_with_progress
from testkit.datasets import BROKEN
from testkit.runs import RUN_TIMEOUT_S, TRAINING, started_run

pytestmark = pytest.mark.integration


def test_plain_lines_and_the_failure_when_not_a_terminal(embedded_stack) -> None:
    shutil.copy(BROKEN / "missing_values.csv", embedded_stack.data_dir / "missing_values.csv")
    admin, run_id, _ = started_run(embedded_stack, {"data_path": "missing_values.csv"})
    out = io.StringIO()

    run = wait_with_progress(admin, TRAINING, run_id, timeout=RUN_TIMEOUT_S, out=out)

    assert run["state"] == "failed"
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and "  load_data: failed" in [
        line.split(" (")[0] for line in lines
    ], lines
    assert any(line.startswith("  send_email: upstream_failed") for line in lines), lines
    failure = failure_of(admin, TRAINING, run_id)
    assert failure["task_id"] == "load_data"
    for words in ("missing_values.csv", "column 'Area Income'", "lines 5, 9, 12", "missing"):
        assert words in failure["message"]
    shown = "\n".join(failure_lines(failure))
    assert "Failed task    load_data" in shown and "Error          " in shown


def test_one_rewritten_line_on_a_terminal(embedded_stack) -> None:
    admin, run_id, _ = started_run(embedded_stack)
    leader, follower = os.openpty()
    received: list[bytes] = []
    reader = threading.Thread(target=read_all, args=(leader, received), daemon=True)
    reader.start()
    terminal = os.fdopen(follower, "w", buffering=1)
    try:
        run = wait_with_progress(admin, TRAINING, run_id, timeout=RUN_TIMEOUT_S, out=terminal)
    finally:
        terminal.close()  # the reader sees the end of the terminal's output
        reader.join(timeout=10)
        os.close(leader)
    shown = b"".join(received).decode()

    assert run["state"] == "success"
    updates = [u for u in shown.replace("\r\n", "\n").split("\r\x1b[2K") if u]
    assert len(updates) >= 2 and shown.endswith("\n")
    done, total = re.match(r"\[(\d+)/(\d+)\] ", updates[-1]).groups()
    assert done == total and int(total) >= 2, updates[-1]
    assert any(" running, " in u or " queued, " in u for u in updates), updates
    assert failure_of(admin, TRAINING, run_id) is None


def read_all(fd: int, into: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO once the other end is closed
            return
        if not chunk:
            return
        into.append(chunk)
