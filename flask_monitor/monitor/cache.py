"""A one-entry TTL cache that coalesces concurrent misses into a single upstream call.

Under load every request wants the same answer (the latest run). Within one TTL window only
the first caller asks Airflow; callers arriving while it is in flight wait for its answer,
and errors are cached for the window too, so a down Airflow is not hammered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    value: Any
    error: BaseException | None
    expires_at: float


class CoalescingCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entry: Entry | None = None
        self._in_flight: threading.Event | None = None

    def get(self, compute: Callable[[], Any], wait_timeout: float = 30.0) -> tuple[Any, bool]:
        """``(value, from_cache)``; re-raises the cached error of a failed computation."""
        with self._lock:
            entry = self._entry
            if entry is not None and entry.expires_at > self._clock():
                return self._unwrap(entry), True
            leader = self._in_flight is None
            if leader:
                self._in_flight = threading.Event()
            in_flight = self._in_flight
        if not leader:
            in_flight.wait(wait_timeout)
            with self._lock:
                entry = self._entry
            if entry is None:
                raise TimeoutError("the shared upstream call did not finish")
            return self._unwrap(entry), True
        try:
            value, error = compute(), None
        except Exception as exc:
            value, error = None, exc
        entry = Entry(value, error, self._clock() + self.ttl)
        with self._lock:
            self._entry = entry
            self._in_flight = None
        in_flight.set()
        return self._unwrap(entry), False

    @staticmethod
    def _unwrap(entry: Entry) -> Any:
        if entry.error is not None:
            raise entry.error
        return entry.value
