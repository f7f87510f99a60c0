"""One record per outage of the Flask monitor, so each outage mails once when it starts and
once when it ends, however many relaunch attempts (and DAGs, and workers) take part.

The record is a small JSON file. Opening an outage creates it with ``O_EXCL`` and ending one
renames it away first: both succeed for exactly one caller, without a lock, on any file
system the workers share.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path


def begin(path: Path, error: str) -> dict | None:
    """Record that the service is down: the new record for the one caller that opened this
    outage, None for everyone else while it lasts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return None
    record = {"since": datetime.now(UTC).isoformat(timespec="seconds"), "error": error}
    with os.fdopen(fd, "w") as out:
        json.dump(record, out)
    return record


def end(path: Path) -> dict | None:
    """Close the open outage, if any: its record for the one caller that closed it, else None."""
    taken = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        os.rename(path, taken)
    except FileNotFoundError:
        return None
    try:
        return json.loads(taken.read_text() or "{}")
    except ValueError:
        return {}  # opened by a caller that died before writing it: still an outage
    finally:
        taken.unlink(missing_ok=True)
