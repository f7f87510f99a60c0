"""Find the processes Airflow runs a task in, to crash them on purpose."""

from __future__ import annotations

from pathlib import Path


def task_process(ti_id: str) -> int | None:
    """The process running task instance ``ti_id``: Airflow titles it ``airflow worker -- <id>``
    (the supervising parent keeps another title)."""
    title = f"airflow worker -- {ti_id}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().rstrip(b"\0")
        except OSError:
            continue
        if cmdline == title:
            return int(proc.name)
    return None
