"""The sample generator: deterministic, balanced, realistic ranges, and the source of data/."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from adclick.dataset import read_dataset
from testkit import advertising as sample
from testkit.advertising import COLUMNS, TARGET
from testkit.datasets import SAMPLE_CSV as SAMPLE
from testkit.datasets import adclick


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    pd.testing.assert_frame_equal(sample.generate(200, seed=3), sample.generate(200, seed=3))
    assert not sample.generate(200, seed=3).equals(sample.generate(200, seed=4))


def test_the_shipped_sample_is_what_the_generator_writes(tmp_path: Path) -> None:
    sample.write_csv(tmp_path / "advertising.csv")
    assert (tmp_path / "advertising.csv").read_bytes() == SAMPLE.read_bytes()


def test_schema_balance_and_ranges() -> None:
    frame = sample.generate(1001, seed=9)
    assert tuple(frame.columns) == COLUMNS
    assert frame[TARGET].value_counts().to_dict() == {0: 501, 1: 500}
    for column, (low, high) in {
        "Daily Time Spent on Site": (32, 92),
        "Age": (19, 61),
        "Area Income": (13_000, 80_000),
        "Daily Internet Usage": (104, 270),
        "Male": (0, 1),
    }.items():
        assert frame[column].between(low, high).all(), column
    assert frame["Timestamp"].str.fullmatch(r"2016-0[1-7]-\d\d \d\d:\d\d:\d\d").all()
    assert frame["Ad Topic Line"].str.count(" ").eq(2).all()


def test_generated_file_passes_validation(tmp_path: Path) -> None:
    path = sample.write_csv(tmp_path / "s.csv", rows=120, seed=1)
    assert len(read_dataset(path, adclick()).frame) == 120


def test_no_row_of_the_public_dataset_is_copied(real_dataset: Path) -> None:
    key = list(adclick().features)
    shared = pd.read_csv(SAMPLE)[key].merge(pd.read_csv(real_dataset)[key], how="inner")
    assert shared.empty


def test_rows_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        sample.generate(0)
