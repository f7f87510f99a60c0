"""The coalescing TTL cache: one upstream call per window, shared by everyone waiting."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_rest import CacheWaitTimeout, CoalescingCache
from testkit.waiting import wait_until


class Clock:
    """A clock the test moves by hand, so TTL behaviour needs no sleeping.

    The cache reads it once per lookup, under its lock, where it decides what the caller
    gets: ``calls`` tells a test that a caller has made that decision.
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.now


class Upstream:
    """Counts calls; optionally blocks each call until released."""

    def __init__(self, result: object = "answer", error: Exception | None = None) -> None:
        self.calls = 0
        self.result, self.error = result, error
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def __call__(self) -> object:
        self.calls += 1
        self.started.set()
        self.release.wait(10)
        if self.error is not None:
            raise self.error
        return self.result


def test_fresh_value_is_reused_until_the_ttl_passes() -> None:
    clock, upstream = Clock(), Upstream()
    cache = CoalescingCache(ttl=2.0, clock=clock)

    assert cache.get(upstream) == ("answer", False)
    clock.now += 1.9
    assert cache.get(upstream) == ("answer", True)
    assert upstream.calls == 1
    clock.now += 0.2
    assert cache.get(upstream) == ("answer", False)
    assert upstream.calls == 2


def test_concurrent_misses_share_one_in_flight_call() -> None:
    upstream = Upstream()
    upstream.release.clear()
    # No caching at all: only joining the call in flight can keep the count at one.
    clock = Clock()
    cache = CoalescingCache(ttl=0.0, clock=clock)
    arrived = threading.Semaphore(0)

    def ask(_: int):
        arrived.release()
        return cache.lookup(upstream)

    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(ask, i) for i in range(12)]
        for _ in range(12):
            arrived.acquire()
        upstream.started.wait(10)
        # Every caller has decided (joined the call in flight) before the answer comes.
        wait_until(lambda: clock.calls >= 12, 10, "all 12 callers to reach the cache")
        upstream.release.set()
        lookups = [f.result() for f in futures]

    assert upstream.calls == 1
    assert {lookup.value for lookup in lookups} == {"answer"}
    assert sorted(lookup.from_cache for lookup in lookups) == [False] + [True] * 11


def test_an_error_is_shared_and_cached_for_the_error_ttl() -> None:
    clock, upstream = Clock(), Upstream(error=ConnectionError("refused"))
    cache = CoalescingCache(ttl=10.0, error_ttl=1.0, clock=clock)

    for _ in range(3):
        with pytest.raises(ConnectionError, match="refused"):
            cache.get(upstream)
    assert upstream.calls == 1
    clock.now += 1.1
    upstream.error = None
    assert cache.get(upstream) == ("answer", False)
    assert upstream.calls == 2


def test_a_waiter_gives_up_after_its_wait_timeout() -> None:
    upstream = Upstream()
    upstream.release.clear()
    cache = CoalescingCache(ttl=5.0)
    leader = threading.Thread(target=cache.lookup, args=(upstream,))
    leader.start()
    upstream.started.wait(10)

    lookup = cache.lookup(upstream, wait_timeout=0.05)

    assert isinstance(lookup.error, CacheWaitTimeout) and lookup.from_cache
    upstream.release.set()
    leader.join()
    assert cache.get(upstream) == ("answer", True)
    assert upstream.calls == 1


def test_a_leader_killed_by_a_base_exception_does_not_wedge_the_cache() -> None:
    cache = CoalescingCache(ttl=5.0)

    def interrupted() -> str:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.get(interrupted)
    assert cache.get(lambda: "recovered") == ("recovered", False)


def test_reraising_a_cached_error_does_not_grow_its_traceback() -> None:
    cache = CoalescingCache(ttl=60.0)

    def fail() -> None:
        raise ValueError("down")

    depths = []
    for _ in range(5):
        try:
            cache.get(fail)
        except ValueError as exc:
            tb, depth = exc.__traceback__, 0
            while tb is not None:
                tb, depth = tb.tb_next, depth + 1
            depths.append(depth)
    assert len(set(depths[1:])) == 1


def refresh_in_flight(cache: CoalescingCache, upstream: Upstream) -> threading.Thread:
    """Start a refresh that blocks in ``upstream`` until the test releases it."""
    upstream.started.clear()
    upstream.release.clear()
    leader = threading.Thread(target=cache.lookup, args=(upstream,))
    leader.start()
    assert upstream.started.wait(10)
    return leader


def test_during_a_refresh_others_get_the_previous_answer_within_stale_for() -> None:
    clock, upstream = Clock(), Upstream(result="old")
    cache = CoalescingCache(ttl=2.0, clock=clock, stale_for=2.0)
    cache.lookup(upstream)
    clock.now += 2.5  # expired half a second ago
    upstream.result = "new"
    leader = refresh_in_flight(cache, upstream)

    lookup = cache.lookup(upstream)  # answered at once, not after the refresh

    assert (lookup.value, lookup.stale, lookup.from_cache) == ("old", True, True)
    upstream.release.set()
    leader.join(10)
    fresh = cache.lookup(upstream)
    assert (fresh.value, fresh.stale) == ("new", False)
    assert upstream.calls == 2


def assert_waits_for_the_refresh(cache, upstream, clock, leader) -> None:
    """A caller arriving while ``leader``'s refresh is in flight waits for its value."""
    decided = clock.calls + 1
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(cache.lookup, upstream)
        wait_until(lambda: clock.calls >= decided, 10, "the caller to reach the cache")
        assert not waiting.done(), "it must wait for the refresh"
        upstream.release.set()
        assert waiting.result(10).value == "new"
    leader.join(10)


def test_an_answer_older_than_stale_for_is_never_given() -> None:
    clock, upstream = Clock(), Upstream(result="old")
    cache = CoalescingCache(ttl=2.0, clock=clock, stale_for=2.0)
    cache.lookup(upstream)
    clock.now += 4.5  # expired 2.5 s ago: too old
    upstream.result = "new"
    leader = refresh_in_flight(cache, upstream)

    assert_waits_for_the_refresh(cache, upstream, clock, leader)


def test_without_stale_for_everyone_waits_for_the_refresh() -> None:
    clock, upstream = Clock(), Upstream(result="old")
    cache = CoalescingCache(ttl=2.0, clock=clock)
    cache.lookup(upstream)
    clock.now += 2.1
    upstream.result = "new"
    leader = refresh_in_flight(cache, upstream)

    assert_waits_for_the_refresh(cache, upstream, clock, leader)
