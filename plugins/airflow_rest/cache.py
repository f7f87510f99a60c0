"""A one-value TTL cache that coalesces concurrent misses into a single upstream call.

Under load every request to the monitor wants the same answer (the latest run). Within one
TTL window only the first caller asks Airflow; callers arriving while it is in flight wait for
its answer instead of asking too. Errors are cached as well (for ``error_ttl``), so a down
Airflow gets one connection attempt per window, not one per request.

With ``stale_for`` > 0, callers arriving while the refresh of an answer that expired less than
``stale_for`` seconds ago is in flight get that answer at once instead of waiting
(stale-while-revalidate): under load, every request arriving during the refresh would otherwise
wait for it, once per window, which is what sets the tail latency. The change still shows as
soon as the refresh ends, as before; only the caller that refreshes waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class CacheWaitTimeout(TimeoutError):
    """The shared upstream call took longer than a waiting caller was willing to wait."""


@dataclass(frozen=True)
class _Entry:
    value: Any
    error: Exception | None
    expires_at: float


class _Flight:
    """One upstream call in progress; waiters read its entry once ``done`` is set."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.entry: _Entry | None = None


@dataclass(frozen=True)
class Lookup:
    """One answer: a value or an error, and whether this caller's own call produced it."""

    value: Any
    error: Exception | None
    from_cache: bool
    stale: bool = False  # an expired answer, given while its refresh is in flight

    def unwrap(self) -> Any:
        if self.error is not None:
            # Shared by many callers: drop the old traceback so re-raising does not grow it.
            raise self.error.with_traceback(None)
        return self.value


class CoalescingCache:
    """Thread-safe; ``lookup`` never raises, ``get`` re-raises a cached error."""

    def __init__(
        self,
        ttl: float,
        error_ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        stale_for: float = 0.0,
    ) -> None:
        self.ttl = ttl
        self.error_ttl = ttl if error_ttl is None else error_ttl
        self.stale_for = stale_for
        self._clock = clock
        self._lock = threading.Lock()
        self._entry: _Entry | None = None
        self._in_flight: _Flight | None = None

    def get(self, compute: Callable[[], Any], wait_timeout: float = 30.0) -> tuple[Any, bool]:
        """``(value, from_cache)``, or the (possibly cached) error raised."""
        lookup = self.lookup(compute, wait_timeout)
        return lookup.unwrap(), lookup.from_cache

    def lookup(self, compute: Callable[[], Any], wait_timeout: float = 30.0) -> Lookup:
        """The cached answer if fresh, else the answer of ``compute`` run by one caller only;
        the others wait up to ``wait_timeout`` for it, or get the answer it replaces if that
        expired less than ``stale_for`` ago. ``from_cache`` is False only for the caller that
        ran ``compute``."""
        with self._lock:
            entry = self._entry
            now = self._clock()
            if entry is not None and entry.expires_at > now:
                return Lookup(entry.value, entry.error, from_cache=True)
            leader = self._in_flight is None
            flight = self._in_flight or _Flight()
            if leader:
                self._in_flight = flight
            elif entry is not None and entry.expires_at + self.stale_for > now:
                return Lookup(entry.value, entry.error, from_cache=True, stale=True)
        if leader:
            entry = self._compute(compute, flight)
            return Lookup(entry.value, entry.error, from_cache=False)
        if not flight.done.wait(wait_timeout):
            error = CacheWaitTimeout(f"the shared upstream call took over {wait_timeout:g} s")
            return Lookup(None, error, from_cache=True)
        if flight.entry is None:  # the leader died of something that is not an Exception
            return Lookup(None, CacheWaitTimeout("the shared upstream call failed"), True)
        return Lookup(flight.entry.value, flight.entry.error, from_cache=True)

    def clear(self) -> None:
        with self._lock:
            self._entry = None

    def _compute(self, compute: Callable[[], Any], flight: _Flight) -> _Entry:
        try:
            try:
                value = compute()
            except Exception as exc:
                flight.entry = _Entry(None, exc, self._clock() + self.error_ttl)
            else:
                flight.entry = _Entry(value, None, self._clock() + self.ttl)
            return flight.entry
        finally:
            # Always release the waiters, even on KeyboardInterrupt, or the cache wedges.
            with self._lock:
                if flight.entry is not None:
                    self._entry = flight.entry
                self._in_flight = None
            flight.done.set()
