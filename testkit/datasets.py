"""The ad-click model and its sample dataset, and the corpus of broken CSV files
(tests/data/broken) with what each one's error must say."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from embedded.stack import REPO_ROOT

if TYPE_CHECKING:
    from adclick.contract import ModelSpec

SAMPLE_CSV = REPO_ROOT / "data" / "advertising.csv"
BROKEN = REPO_ROOT / "tests" / "data" / "broken"

# Each broken file and words its error must contain: the column, the CSV line, the problem.
EXPECTED = {
    "empty.csv": ["empty"],
    "header_only.csv": ["no data rows"],
    "blank_header.csv": ["line 1", "header is blank"],
    "missing_column.csv": ["line 1", "missing required column 'Age'"],
    "renamed_column.csv": [
        "missing required column 'Daily Time Spent on Site'",
        "did you mean 'Time Spent on Site'",
    ],
    "text_in_numeric.csv": ["column 'Age'", "line 8:", "not a number", "'forty-two'"],
    "bom_text_in_numeric.csv": ["column 'Daily Time Spent on Site'", "line 3:", "'n/a?'"],
    "inf_values.csv": ["column 'Daily Internet Usage'", "line 6:", "not a finite number"],
    "one_class.csv": ["column 'Clicked on Ad'", "only class 1", "both 0 and 1"],
    "target_two.csv": ["column 'Clicked on Ad'", "line 10:", "must be 0 or 1", "found 2"],
    "target_yes_no.csv": ["column 'Clicked on Ad'", "must be 0 or 1", "'yes'", "(60 rows)"],
    "semicolon_delimited.csv": ["looks like ';'-delimited"],
    "tab_delimited.csv": ["looks like tab-delimited"],
    "binary_garbage.csv": ["NUL bytes", "not a UTF-8 CSV"],
    "gzipped.csv": ["gzip"],
    "latin1.csv": ["line 4:", "not valid UTF-8", "0xfc"],
    "utf16.csv": ["UTF-16"],
    "utf16_without_bom.csv": ["line 1:", "UTF-16"],
    "duplicate_column.csv": ["line 1:", "duplicate column", "'Age' in columns 2, 11"],
    "ragged_long_row.csv": ["line 7:", "11 fields", "header has 10", "quoted"],
    "ragged_short_row.csv": ["line 9:", "7 fields", "header has 10"],
    "unclosed_quote.csv": ["line 11:", "never closed"],
    "too_few_rows.csv": ["only 20 data rows", "at least 50"],
    # The ad-click model has no imputer (no ALLOW_MISSING): gaps are refused, named.
    "missing_values.csv": ["column 'Area Income'", "lines 5, 9, 12", "missing values"],
}


MODELS = REPO_ROOT / "dags" / "models"


@cache
def adclick() -> ModelSpec:
    """The ad-click model's module, ``dags/models/adclick.py``."""
    from adclick import contract

    return contract.load_named(contract.DEFAULT_MODEL, MODELS)


# Files the data checks accept: booleans are a feature type.
ACCEPTED = ("male_true_false.csv",)


def split_sample(workdir: Path) -> Path:
    """The sample taken through the pipeline's first three steps in ``workdir``: what a fit
    starts from."""
    from adclick import steps

    steps.ingest_csv(SAMPLE_CSV, workdir, adclick())
    steps.preprocess(workdir, adclick())
    steps.split_holdout(workdir, adclick())
    return workdir
