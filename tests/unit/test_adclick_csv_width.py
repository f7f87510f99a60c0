"""A wide header costs nothing: a megabyte naming ~139 000 columns is refused within 2 s, and
the header checks stay linear when the column limit is lifted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from adclick import contract, csvfile, source
from adclick.dataset import read_dataset
from adclick.errors import ConfigError, DataValidationError
from testkit import fixture_models

MEGABYTE = 1_000_000
BUDGET_S = 2.0
MODEL = "iris"  # any model: the header checks do not depend on it


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixture_models.export_csv(MODEL, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def spec() -> contract.ModelSpec:
    return contract.load_module(fixture_models.module(MODEL))


def wide_header_file(
    path: Path, sample_csv: Path, *, keep_sample_header: bool, repeat: str | None = None
) -> Path:
    """A header-only file of one megabyte: the sample's header (or not), then ``c<n>`` names
    (or ``repeat`` over and over, which makes every one of them a duplicate)."""
    first = sample_csv.read_text(encoding="utf-8").splitlines()[0]
    names = first.split(",") if keep_sample_header else []
    size = sum(len(name) + 1 for name in names)
    n = 0
    while size < MEGABYTE - 16:
        name = repeat or f"c{n}"
        names.append(name)
        size += len(name) + 1
        n += 1
    path.write_text(",".join(names) + "\n", encoding="utf-8")
    return path


def refused_within_budget(path: Path, spec: contract.ModelSpec) -> tuple[str, float]:
    """The error and the CPU seconds it took (a shared machine's load stretches wall time)."""
    started = time.process_time()
    with pytest.raises(DataValidationError) as caught:
        read_dataset(path, spec)
    return str(caught.value), time.process_time() - started


@pytest.mark.parametrize("keep_sample_header", [True, False], ids=["required-present", "missing"])
def test_a_megabyte_of_column_names_is_refused_fast_naming_the_file_and_the_limit(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    keep_sample_header: bool,
    sample_csv: Path,
    spec: contract.ModelSpec,
) -> None:
    monkeypatch.delenv(csvfile.MAX_COLUMNS_VARIABLE, raising=False)
    path = wide_header_file(
        tmp_path / "wide.csv", sample_csv, keep_sample_header=keep_sample_header
    )
    assert 1_000_000 - 16 <= path.stat().st_size <= 1_000_016

    message, took = refused_within_budget(path, spec)

    assert took < BUDGET_S, f"took {took:.2f} s"
    assert message.startswith(f"{path}: line 1: "), message
    assert "more than the limit of 10,000 (ADCLICK_MAX_COLUMNS)" in message, message
    assert "the header has 1" in message and "columns" in message, message


@pytest.mark.parametrize("repeat", [None, "dup"], ids=["distinct", "all-duplicates"])
def test_header_checks_are_linear_with_the_limit_lifted(
    tmp_path: Path, repeat: str | None, sample_csv: Path, spec: contract.ModelSpec
) -> None:
    """Without the cap the same megabyte reaches every header check (required columns,
    duplicates): each must be one pass over the names, not one pass per name."""
    path = wide_header_file(
        tmp_path / "wide.csv", sample_csv, keep_sample_header=True, repeat=repeat
    )
    first_repeat = len(sample_csv.read_text(encoding="utf-8").splitlines()[0].split(",")) + 1

    started = time.process_time()
    with source.open_dataset(path, max_bytes=2 * MEGABYTE) as opened:
        if repeat:
            with pytest.raises(DataValidationError) as caught:
                csvfile.inspect(opened, spec.required, max_columns=10 * MEGABYTE)
        else:
            header = csvfile.inspect(opened, spec.required, max_columns=10 * MEGABYTE).header
    took = time.process_time() - started

    assert took < BUDGET_S, f"took {took:.2f} s"
    if repeat:
        message = str(caught.value)
        columns = ", ".join(str(first_repeat + n) for n in range(5))
        assert f"duplicate column names in the header: 'dup' in columns {columns}, ..." in message
        assert len(message) < 300, message
    else:
        assert len(header) > 130_000


def test_the_limit_is_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_csv: Path, spec: contract.ModelSpec
) -> None:
    lines = sample_csv.read_text(encoding="utf-8").splitlines()
    width = len(lines[0].split(","))
    path = tmp_path / "sample.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    monkeypatch.setenv(csvfile.MAX_COLUMNS_VARIABLE, str(width))
    assert len(read_dataset(path, spec).frame) == len(lines) - 1
    monkeypatch.setenv(csvfile.MAX_COLUMNS_VARIABLE, str(width - 1))
    message, _ = refused_within_budget(path, spec)
    assert f"the header has {width} columns, more than the limit of {width - 1}" in message
    for bad in ("0", "-3", "ten", "1.5"):
        monkeypatch.setenv(csvfile.MAX_COLUMNS_VARIABLE, bad)
        with pytest.raises(ConfigError, match="ADCLICK_MAX_COLUMNS must be a positive whole"):
            read_dataset(path, spec)
