"""Opening the dataset: only a regular file of bounded size, opened once, is ever read.

Each case here would block a reader (a FIFO with no writer, a hung device), never end
(/dev/zero), or crash with an OS error; each must instead be a prompt DataValidationError
naming the path.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from adclick import csvfile, source
from adclick.dataset import read_dataset
from adclick.errors import ConfigError, DataValidationError
from testkit.datasets import SAMPLE_CSV as SAMPLE
from testkit.datasets import adclick
from testkit.special_files import KINDS, special_file


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_anything_but_a_regular_file_is_refused_naming_it(kind: str, tmp_path: Path) -> None:
    path = special_file(kind, tmp_path)
    with pytest.raises(DataValidationError) as caught:
        read_dataset(path, adclick())
    assert str(caught.value) == f"{path}: {KINDS[kind]}"


def test_a_nul_byte_in_the_name_is_refused() -> None:
    with pytest.raises(DataValidationError, match="not a usable file name") as caught:
        read_dataset(Path("data\x00.csv"), adclick())
    assert "data\\x00.csv" in str(caught.value)


def test_a_file_over_the_size_limit_is_refused_saying_size_and_limit() -> None:
    size_mb = SAMPLE.stat().st_size / source.MB
    with pytest.raises(DataValidationError) as caught:
        read_dataset(SAMPLE, adclick(), max_bytes=50_000)
    message = str(caught.value)
    assert message.startswith(f"{SAMPLE}: the file is {size_mb:.1f} MB")
    assert "limit of 0.05 MB (ADCLICK_MAX_DATASET_MB)" in message
    assert read_dataset(SAMPLE, adclick(), max_bytes=SAMPLE.stat().st_size).rows == 1000


def test_the_size_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(source.MAX_MB_VARIABLE, raising=False)
    assert source.max_bytes_from_env() == source.DEFAULT_MAX_MB * source.MB
    monkeypatch.setenv(source.MAX_MB_VARIABLE, "0.05")
    assert source.max_bytes_from_env() == 50_000
    with pytest.raises(DataValidationError, match=r"limit of 0\.05 MB"):
        read_dataset(SAMPLE, adclick())
    for bad in ("lots", "0", "-1", "nan"):
        monkeypatch.setenv(source.MAX_MB_VARIABLE, bad)
        with pytest.raises(ConfigError, match="ADCLICK_MAX_DATASET_MB must be a positive"):
            source.max_bytes_from_env()


def test_what_was_opened_is_what_is_read_even_if_the_name_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(SAMPLE.read_bytes())
    with source.open_dataset(path, max_bytes=10**9) as opened:
        replacement = tmp_path / "other.csv"
        replacement.write_bytes(b"not,the,file,that,was,opened\n")
        os.replace(replacement, path)
        checked = csvfile.inspect(opened)
    assert checked.sha256 == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()


def test_a_file_written_to_while_it_is_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "growing.csv"
    path.write_bytes(SAMPLE.read_bytes())
    with source.open_dataset(path, max_bytes=10**9) as opened:
        opened.check_unchanged()
        with path.open("ab") as handle:
            handle.write(b"1,2,3\n")
        with pytest.raises(DataValidationError, match="changed while it was being read"):
            opened.check_unchanged()


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ok.csv").write_bytes(SAMPLE.read_bytes())
    (tmp_path / "secret.csv").write_bytes(SAMPLE.read_bytes())
    return root


def test_beneath_a_root_a_file_inside_is_read(data_root: Path) -> None:
    assert read_dataset(data_root / "sub" / "ok.csv", adclick(), root=data_root).rows == 1000


@pytest.mark.parametrize("link", ["final", "directory"])
def test_beneath_a_root_no_symlink_is_followed(data_root: Path, link: str) -> None:
    """The path was resolved and checked before; a link found when opening was swapped in
    since, and may lead anywhere."""
    outside = data_root.parent / "secret.csv"
    if link == "final":
        (data_root / "sub" / "ok.csv").unlink()
        (data_root / "sub" / "ok.csv").symlink_to(outside)
    else:
        (data_root / "sub").rename(data_root / "real")
        (data_root / "sub").symlink_to(data_root.parent)
        (data_root.parent / "ok.csv").write_bytes(SAMPLE.read_bytes())
    with pytest.raises(DataValidationError, match="symbolic link appeared") as caught:
        read_dataset(data_root / "sub" / "ok.csv", adclick(), root=data_root)
    assert str(caught.value).startswith("sub/ok.csv: "), "named relative to the data root"


def test_beneath_a_root_a_path_outside_is_refused_unopened(data_root: Path) -> None:
    fifo = data_root.parent / "pipe.csv"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    with pytest.raises(DataValidationError, match="outside the data root"):
        read_dataset(fifo, adclick(), root=data_root)
