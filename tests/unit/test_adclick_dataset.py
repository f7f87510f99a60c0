"""Loading and validating the CSV: every kind of broken file gets a clear DataValidationError."""

from __future__ import annotations

import codecs
import csv
import io
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adclick.dataset import read_dataset
from adclick.defaults import MIN_ROWS as DEFAULT_MIN_ROWS
from adclick.errors import DataValidationError
from testkit.datasets import ACCEPTED, BROKEN, EXPECTED, adclick
from testkit.datasets import SAMPLE_CSV as SAMPLE

SPEC = adclick()
FEATURES, TARGET, REQUIRED = SPEC.features, SPEC.target, SPEC.required
CLASSES = SPEC.labels


def load_dataset(path: Path, **kwargs) -> pd.DataFrame:
    return read_dataset(path, SPEC, **kwargs).frame


def assert_rejected(path: Path, words: list[str], **kwargs) -> DataValidationError:
    with pytest.raises(DataValidationError) as caught:
        load_dataset(path, **kwargs)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message and len(message) < 600, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return caught.value


def write_lines(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_text(newline.join(lines) + newline, encoding="utf-8", newline="")
    return path


def with_field(lines: list[str], line: int, column: int, value: str) -> list[str]:
    """``lines`` with one field replaced; ``line`` is the 1-based CSV line."""
    fields = lines[line - 1].split(",")
    fields[column] = value
    return [*lines[: line - 1], ",".join(fields), *lines[line:]]


@pytest.fixture(scope="module")
def sample_lines() -> list[str]:
    return SAMPLE.read_text(encoding="utf-8").splitlines()


def test_every_corpus_file_has_expectations() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.csv")) == sorted({*EXPECTED, *ACCEPTED})


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_booleans_are_a_feature_type(name: str) -> None:
    assert len(load_dataset(BROKEN / name)) == 60


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file_is_rejected_with_a_clear_message(name: str) -> None:
    assert_rejected(BROKEN / name, EXPECTED[name])


def test_directory_and_missing_path(tmp_path: Path) -> None:
    assert_rejected(tmp_path, ["is a directory"])
    assert_rejected(tmp_path / "nope.csv", ["no such file"])


def test_huge_field_in_a_numeric_column_is_reported_shortened(
    tmp_path: Path, sample_lines: list[str]
) -> None:
    path = write_lines(tmp_path / "huge.csv", with_field(sample_lines, 2, 1, "x" * 5_000_000))
    error = assert_rejected(path, ["column 'Age'", "line 2:", "not a number", "xxx..."])
    assert error.lines == [2] and error.count == 1


def test_an_extra_field_on_the_first_data_row_is_refused(
    tmp_path: Path, sample_lines: list[str]
) -> None:
    """pandas drops the extra field of a too-long first row with only a warning, and would load
    the file as if nothing were wrong."""
    lines = [sample_lines[0], sample_lines[1] + ",1", *sample_lines[2:]]
    error = assert_rejected(write_lines(tmp_path / "first.csv", lines), ["line 2:", "11 fields"])
    assert error.lines == [2] and error.count == 1


def test_huge_field_in_an_unused_text_column_is_fine(
    tmp_path: Path, sample_lines: list[str]
) -> None:
    path = write_lines(tmp_path / "huge.csv", with_field(sample_lines, 2, 4, "x" * 5_000_000))
    assert len(load_dataset(path)) == len(sample_lines) - 1


def test_huge_first_line_is_not_taken_for_a_header(tmp_path: Path) -> None:
    path = tmp_path / "one_line.csv"
    path.write_bytes(b"a" * (3 << 20))
    assert_rejected(path, ["line 1 is longer than"])


def test_sample_loads_with_the_used_columns_only() -> None:
    frame = load_dataset(SAMPLE)
    assert list(frame.columns) == list(REQUIRED)
    assert len(frame) == 1000
    assert all(pd.api.types.is_numeric_dtype(frame[c]) for c in REQUIRED)
    assert sorted(frame[TARGET].unique()) == [0, 1]


def test_hash_is_the_files_sha256() -> None:
    import hashlib

    assert read_dataset(SAMPLE, SPEC).sha256 == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "variant",
    ["bom", "crlf", "padded_names", "extra_and_reordered", "required_only", "blank_lines"],
)
def test_harmless_variants_are_accepted(
    tmp_path: Path, sample_lines: list[str], variant: str
) -> None:
    """A BOM, CRLF, spaces around names, extra or reordered columns, no text columns."""
    expected = load_dataset(SAMPLE)
    header, rows = sample_lines[0], sample_lines[1:]
    path = tmp_path / f"{variant}.csv"
    if variant == "bom":
        path.write_bytes(b"\xef\xbb\xbf" + SAMPLE.read_bytes())
    elif variant == "crlf":
        write_lines(path, sample_lines, newline="\r\n")
    elif variant == "padded_names":
        write_lines(path, [",".join(f" {n} " for n in header.split(",")), *rows])
    elif variant == "blank_lines":
        write_lines(path, [header, "", *rows[:10], "", *rows[10:], ""])
    else:
        frame = pd.read_csv(SAMPLE)
        if variant == "extra_and_reordered":
            frame = frame.assign(Extra="x")[[*reversed(frame.columns), "Extra"]]
        else:
            frame = frame[list(REQUIRED)]
        frame.to_csv(path, index=False)
    pd.testing.assert_frame_equal(load_dataset(path), expected, check_dtype=False)


def test_line_numbers_count_physical_lines_across_quoted_newlines(
    tmp_path: Path, sample_lines: list[str]
) -> None:
    lines = with_field(sample_lines, 3, 4, '"Two-line\nad topic"')  # CSV lines 3-4: one record
    lines = with_field(lines, 8, 1, "old")  # list item 8, on editor line 9 after the 2-line one
    assert_rejected(write_lines(tmp_path / "quoted.csv", lines), ["column 'Age'", "line 9:"])


def test_min_rows_is_configurable() -> None:
    assert len(load_dataset(BROKEN / "too_few_rows.csv", min_rows=20)) == 20
    assert_rejected(SAMPLE, ["only 1000 data rows", "at least 5000"], min_rows=5000)


def test_the_real_dataset_passes(real_dataset: Path) -> None:
    frame = load_dataset(real_dataset)
    assert len(frame) == 1000 and list(frame.columns) == [*FEATURES, TARGET]


def strict_reading(data: bytes, min_rows: int = DEFAULT_MIN_ROWS) -> np.ndarray | None:
    """What a correct loader makes of ``data``, worked out without pandas: the required columns
    of every record as floats (an empty feature is a gap, NaN), or None where the file must
    be refused."""
    try:
        text = data.decode("utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8")
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except (UnicodeDecodeError, csv.Error):
        return None
    if "\x00" in text or not rows:
        return None
    header = [name.strip() for name in rows[0]]
    if any(header.count(column) != 1 for column in REQUIRED):
        return None
    records = [r for r in rows[1:] if r and (len(r) > 1 or r[0].strip())]
    if len(records) < min_rows or any(len(r) != len(header) for r in records):
        return None
    try:
        values = np.array(
            [
                [
                    float(r[header.index(c)]) if r[header.index(c)].strip() else np.nan
                    for c in REQUIRED
                ]
                for r in records
            ]
        )
    except ValueError:
        return None
    target = values[:, -1]
    if np.isinf(values).any() or not np.isin(target, CLASSES).all():
        return None
    return values if len(np.unique(target)) == len(CLASSES) else None


def test_mangled_files_load_as_a_strict_reader_reads_them_or_are_refused(tmp_path: Path) -> None:
    """Seeded random damage (bytes, quotes, delimiters, cuts): each file is either refused with
    a clean error, or loads as exactly the values a strict reader finds in it."""
    rnd = random.Random(1234)
    base = SAMPLE.read_bytes()[:9000]
    base = base[: base.rfind(b"\n") + 1]
    tokens = [b",", b'"', b"\n", b"\r", b"\x00", b"\xff", b"inf", b";", b"True", b"\xef\xbb\xbf"]
    path = tmp_path / "mangled.csv"
    outcomes = {"refused": 0, "loaded": 0}
    for case in range(150):
        data = bytearray(base)
        for _ in range(rnd.randint(1, 4)):
            pos = rnd.randrange(len(data) + 1)
            if rnd.random() < 0.6:
                data[pos:pos] = rnd.choice(tokens)
            else:
                del data[pos : pos + rnd.randint(1, 40)]
        path.write_bytes(bytes(data))
        expected = strict_reading(bytes(data))
        try:
            frame = load_dataset(path)
        except DataValidationError as exc:
            outcomes["refused"] += 1
            assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
            assert expected is None, f"case {case}: refused a valid file: {exc}"
            continue
        outcomes["loaded"] += 1
        assert expected is not None, f"case {case}: loaded a file a strict reader refuses"
        np.testing.assert_allclose(
            frame.to_numpy(dtype=float, na_value=np.nan), expected, rtol=1e-12
        )
    assert outcomes["refused"] > 100 and outcomes["loaded"] > 10, outcomes
