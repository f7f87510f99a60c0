"""The dataset's columns (the public "Advertising" schema) and what the model uses of them."""

from __future__ import annotations

FEATURES: tuple[str, ...] = (
    "Daily Time Spent on Site",
    "Age",
    "Area Income",
    "Daily Internet Usage",
    "Male",
)
TARGET = "Clicked on Ad"
TEXT_COLUMNS: tuple[str, ...] = ("Ad Topic Line", "City", "Country", "Timestamp")
# Column order of the public file; the sample generator writes the same.
COLUMNS: tuple[str, ...] = (
    "Daily Time Spent on Site",
    "Age",
    "Area Income",
    "Daily Internet Usage",
    "Ad Topic Line",
    "City",
    "Male",
    "Country",
    "Timestamp",
    "Clicked on Ad",
)
# Only these must be present; the text columns are not used by the model, so may be absent.
REQUIRED: tuple[str, ...] = (*FEATURES, TARGET)
CLASSES: tuple[int, int] = (0, 1)
DEFAULT_MIN_ROWS = 50
