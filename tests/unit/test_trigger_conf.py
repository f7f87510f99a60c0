"""The trigger conf's checks, offline: no file outside the data root is ever named a dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adclick_airflow.trigger_conf import ConfError, check_conf_keys, dataset_path, resolve_dataset


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.csv").write_text("x\n")
    return root


def test_relative_and_absolute_paths_inside_the_root_resolve(root: Path) -> None:
    assert resolve_dataset("sub/a.csv", root) == root / "sub" / "a.csv"
    assert resolve_dataset(str(root / "sub" / "a.csv"), root) == root / "sub" / "a.csv"
    assert resolve_dataset("sub/../sub/a.csv", root) == root / "sub" / "a.csv"


def test_a_link_inside_the_root_to_a_file_inside_resolves_to_its_target(root: Path) -> None:
    (root / "latest.csv").symlink_to(root / "sub" / "a.csv")
    assert resolve_dataset("latest.csv", root) == root / "sub" / "a.csv"


@pytest.mark.parametrize(
    "value", ["../secret.csv", "sub/../../secret.csv", "/etc/passwd", "link.csv", "sub/out/x"]
)
def test_anything_leading_outside_the_root_is_refused(root: Path, value: str) -> None:
    (root / "link.csv").symlink_to("/etc/passwd")
    (root / "sub" / "out").symlink_to(root.parent)
    with pytest.raises(ConfError, match="is outside the data root") as caught:
        resolve_dataset(value, root)
    assert repr(value) in str(caught.value)
    assert str(root) not in str(caught.value), "the server's path of the data root is not shown"


def test_a_symlink_loop_and_a_nul_byte_are_conf_errors(root: Path) -> None:
    (root / "loop.csv").symlink_to("loop.csv")
    with pytest.raises(ConfError, match=r"data_path 'loop.csv' cannot be resolved"):
        resolve_dataset("loop.csv", root)
    with pytest.raises(ConfError, match=r"data_path 'a\\x00.csv' is not a usable file name"):
        resolve_dataset("a\x00.csv", root)


@pytest.mark.parametrize("value", ["", "  ", None, ["a.csv"]])
def test_data_path_must_be_a_non_empty_string(root: Path, value: object) -> None:
    with pytest.raises(ConfError, match="non-empty string"):
        resolve_dataset(value, root)


def test_unknown_conf_keys_are_refused_by_name() -> None:
    check_conf_keys({"data_path": "a.csv"}, {"data_path", "min_accuracy"})
    with pytest.raises(ConfError, match=r"unknown trigger conf key\(s\) min_acuracy; allowed: "):
        check_conf_keys({"min_acuracy": 0.9}, {"data_path", "min_accuracy"})


def test_dataset_path_checks_keys_first_then_the_path(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADCLICK_DATA_DIR", str(root))
    allowed = {"data_path": None}
    assert dataset_path({"data_path": "sub/a.csv"}, {}, allowed) == root / "sub" / "a.csv"
    with pytest.raises(ConfError, match="unknown"):
        dataset_path({"data_path": "sub/a.csv"}, {"typo": 1}, allowed)
    with pytest.raises(ConfError, match="outside"):
        dataset_path({"data_path": os.devnull}, {}, allowed)
