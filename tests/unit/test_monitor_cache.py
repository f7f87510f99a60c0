"""The status cache: one upstream call per TTL window, however many callers at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from monitor.cache import CoalescingCache


class SlowCounter:
    def __init__(self, delay: float = 0.2, fail: bool = False) -> None:
        self.calls = 0
        self.delay = delay
        self.fail = fail
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("upstream down")
        return self.calls


def test_concurrent_misses_make_one_call() -> None:
    cache, compute = CoalescingCache(ttl=10), SlowCounter()
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda _: cache.get(compute), range(32)))
    assert compute.calls == 1
    assert {value for value, _ in results} == {1}
    assert sum(not from_cache for _, from_cache in results) == 1


def test_entry_expires_after_ttl() -> None:
    now = [0.0]
    cache, compute = CoalescingCache(ttl=2, clock=lambda: now[0]), SlowCounter(delay=0)
    assert cache.get(compute) == (1, False)
    now[0] = 1.9
    assert cache.get(compute) == (1, True)
    now[0] = 2.1
    assert cache.get(compute) == (2, False)


def test_errors_are_cached_for_the_window_too() -> None:
    cache, compute = CoalescingCache(ttl=10), SlowCounter(delay=0, fail=True)
    for _ in range(5):
        with pytest.raises(ConnectionError):
            cache.get(compute)
    assert compute.calls == 1
