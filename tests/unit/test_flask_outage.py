"""One outage record, opened and closed exactly once however many callers race for it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from adclick_airflow import outage


def test_only_the_first_failure_opens_an_outage(tmp_path: Path) -> None:
    path = tmp_path / "state" / "outage.json"
    with ThreadPoolExecutor(8) as pool:
        records = list(pool.map(lambda i: outage.begin(path, f"attempt {i}"), range(16)))

    opened = [r for r in records if r is not None]
    assert len(opened) == 1
    assert opened[0]["since"] and opened[0]["error"].startswith("attempt ")
    assert outage.begin(path, "later attempt") is None


def test_only_one_caller_closes_it(tmp_path: Path) -> None:
    path = tmp_path / "outage.json"
    opened = outage.begin(path, "HTTP 502")
    with ThreadPoolExecutor(8) as pool:
        closed = [r for r in pool.map(lambda _: outage.end(path), range(16)) if r is not None]

    assert closed == [opened]
    assert list(tmp_path.iterdir()) == []
    assert outage.end(path) is None
    assert outage.begin(path, "the next outage") is not None  # a new outage mails again


def test_a_record_left_empty_still_counts_as_an_outage(tmp_path: Path) -> None:
    path = tmp_path / "outage.json"
    path.touch()  # its opener died before writing

    assert outage.begin(path, "again") is None
    assert outage.end(path) == {}
