"""Storage locations without a store: what is a local path, what is an object URL, and which
object keys lie inside a root (the checks run before any request is made)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adclick import storage
from adclick.errors import ConfigError


def test_local_paths_stay_pathlib_paths(tmp_path: Path) -> None:
    assert storage.location(str(tmp_path)) == tmp_path
    assert type(storage.location("relative/dir")) is type(tmp_path)
    assert storage.location(tmp_path) is tmp_path
    assert storage.is_local(storage.location("a:b"))  # a colon alone is no URL


def test_s3_urls_become_object_paths() -> None:
    url = storage.location("s3://bucket/prefix/key.csv")
    assert not storage.is_local(url)
    assert str(url) == "s3://bucket/prefix/key.csv"
    assert storage.location(url) is url


@pytest.mark.parametrize("value", ["gs://bucket/x", "http://host/x", "s3://", "s3:///key"])
def test_other_urls_and_urls_without_a_bucket_are_refused(value: str) -> None:
    with pytest.raises(ConfigError):
        storage.location(value)


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        ("s3://b/data/a.csv", True),
        ("s3://b/data/sub/a.csv", True),
        ("s3://b/data", True),
        ("s3://b/database/a.csv", False),
        ("s3://b/data/../model/current.json", False),
        ("s3://b/data/./a.csv", False),
        ("s3://b/data//a.csv", False),
        ("s3://other/data/a.csv", False),
    ],
)
def test_keys_inside_a_root_share_its_bucket_and_segments(path: str, inside: bool) -> None:
    root = storage.location("s3://b/data")
    assert storage.within(storage.location(path), root) is inside


def test_a_local_path_is_never_inside_an_object_root(tmp_path: Path) -> None:
    assert not storage.within(tmp_path, storage.location("s3://b/data"))
    assert not storage.within(storage.location("s3://b/data/x"), tmp_path)
