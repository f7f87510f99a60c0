"""How often the Flask monitor has been relaunched lately: the wait before the next relaunch
(it doubles with each relaunch in the window), and whether the service is flapping.

More than ``flapping_relaunches`` relaunches within ``window_s`` seconds make a flapping
episode; it opens once (one alert) and closes when a relaunch finds no more than that many in
its window. The history is a small JSON file next to the outage record, updated under an
exclusive lock: the relaunch tasks that write it run on the main host only.

Plain Python, no Airflow import; the defaults below are the settings' defaults
(:func:`adclick_airflow.settings.relaunch_policy`).
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FLAPPING_RELAUNCHES = 3
DEFAULT_WINDOW_S = 600.0
DEFAULT_FIRST_BACKOFF_S = 2.0
DEFAULT_MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class RelaunchPolicy:
    flapping_relaunches: int = DEFAULT_FLAPPING_RELAUNCHES
    window_s: float = DEFAULT_WINDOW_S
    first_backoff_s: float = DEFAULT_FIRST_BACKOFF_S
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S


@dataclass(frozen=True)
class Recorded:
    """One relaunch as recorded: how many fell in the window, and whether it opened a
    flapping episode (the one relaunch of the episode that alerts)."""

    in_window: int
    flapping_since: float | None
    opened_episode: bool


class RelaunchHistory:
    def __init__(self, path: Path, policy: RelaunchPolicy) -> None:
        self.path = Path(path)
        self.lockfile = self.path.with_name(f".{self.path.name}.lock")
        self.policy = policy

    def backoff(self, now: float | None = None) -> float:
        """Seconds to wait before relaunching now: none for the first relaunch in the window,
        then ``first_backoff_s`` doubled per relaunch in it (at most ``max_backoff_s``),
        counted from the last relaunch."""
        now = time.time() if now is None else now
        with self._locked():
            recent = self._recent(self._read(), now)
        if not recent:
            return 0.0
        wait = self.policy.first_backoff_s * 2 ** (len(recent) - 1)
        wait = min(wait, self.policy.max_backoff_s)
        return max(0.0, recent[-1] + wait - now)

    def record(self, now: float | None = None) -> Recorded:
        """Count one relaunch at ``now``; opens or closes the flapping episode."""
        now = time.time() if now is None else now
        with self._locked():
            state = self._read()
            recent = [*self._recent(state, now), now]
            flapping = len(recent) > self.policy.flapping_relaunches
            since = state.get("flapping_since")
            opened = flapping and since is None
            since = (now if opened else since) if flapping else None
            self._write({"relaunches": recent, "flapping_since": since})
        return Recorded(len(recent), since, opened)

    def _recent(self, state: dict, now: float) -> list[float]:
        start = now - self.policy.window_s
        return sorted(t for t in state.get("relaunches", []) if start < t <= now)

    def _read(self) -> dict:
        try:
            state = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # none yet, or torn by a crash: start counting afresh
        return state if isinstance(state, dict) else {}

    def _write(self, state: dict) -> None:
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text(json.dumps(state))
        partial.replace(self.path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lockfile.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
