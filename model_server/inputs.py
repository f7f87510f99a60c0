"""Request bodies to a data frame of a model's features, or a :class:`BadInput` saying what is
wrong (the column and the rows where there are any).

Formats: a CSV body (``text/csv``), JSON records (a list of objects, or one object), and
MLflow's scoring protocol: ``dataframe_split`` (``columns`` and ``data``, as pandas'
``to_dict(orient="split")``), ``dataframe_records``, and ``inputs`` (columns as lists, records,
or rows of values in the features' order).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pandas as pd

from adclick.dataset import check_features
from adclick.errors import DataValidationError

SOURCE = "request body"  # what the errors name as the file
CSV_TYPES = frozenset({"text/csv", "application/csv"})
MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "inputs")


class BadInput(ValueError):
    """A body that cannot be scored: 400 with this message, the column and the rows."""

    def __init__(self, message: str, column: str | None = None, rows: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.column = column
        self.rows = list(rows)

    def answer(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"error": str(self)}
        if self.column is not None:
            answer["column"] = self.column
        if self.rows:
            answer["rows"] = self.rows
        return answer


def is_csv(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() in CSV_TYPES


def from_csv(body: bytes) -> pd.DataFrame:
    if not body.strip():
        raise BadInput(f"{SOURCE}: empty; send a header line and at least one row")
    try:
        return pd.read_csv(io.BytesIO(body))
    except (ValueError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"{SOURCE}: not a CSV table: {first}") from None


def from_records(records: Any) -> pd.DataFrame:
    """A list of objects (one per row), or one object (one row)."""
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list) or not records:
        raise BadInput(f"{SOURCE}: expected a non-empty list of objects, one per row")
    for position, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise BadInput(f"{SOURCE}: row {position} is not an object", rows=[position])
    return pd.DataFrame.from_records(records)


def from_mlflow(payload: Any, features: Sequence[str]) -> pd.DataFrame:
    """MLflow's scoring protocol: exactly one of ``dataframe_split``, ``dataframe_records``,
    ``inputs`` (``params`` is accepted and ignored: the champion takes none)."""
    if not isinstance(payload, dict):
        raise BadInput(f"{SOURCE}: expected a JSON object with one of {_formats()}")
    given = [key for key in MLFLOW_FORMATS if key in payload]
    unknown = sorted(set(payload) - {*MLFLOW_FORMATS, "params"})
    if len(given) != 1 or unknown:
        found = ", ".join(unknown or given) or "none"
        raise BadInput(f"{SOURCE}: expected exactly one of {_formats()}; found {found}")
    data = payload[given[0]]
    if given[0] == "dataframe_records":
        return from_records(data)
    if given[0] == "dataframe_split":
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise BadInput(f"{SOURCE}: dataframe_split needs 'columns' and a list 'data'")
        columns = data.get("columns") or list(features)
        return _rows(data["data"], columns)
    if isinstance(data, dict):  # inputs as columns: {"col": [values]}
        try:
            return pd.DataFrame({key: _as_list(value) for key, value in data.items()})
        except ValueError as exc:
            raise BadInput(f"{SOURCE}: inputs: {exc}") from None
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        return from_records(data)
    if isinstance(data, list):
        return _rows(data, list(features))
    raise BadInput(f"{SOURCE}: inputs must be an object of columns or a list of rows")


def checked(
    frame: pd.DataFrame, display: str, features: Sequence[str], allow_missing: bool = False
) -> pd.DataFrame:
    """The ``features`` of ``frame``, in order, checked as the training data's are (gaps
    refused unless the model's estimator takes them)."""
    if frame.empty:
        raise BadInput(f"{SOURCE}: no rows to score")
    try:
        check_features(display, features, frame, SOURCE, allow_missing=allow_missing)
    except DataValidationError as exc:
        absent = [column for column in features if column not in frame.columns]
        column = exc.column or (absent[0] if absent else None)
        raise BadInput(str(exc), column=column, rows=exc.lines) from None
    return frame[list(features)]


def _rows(rows: Any, columns: Sequence[str]) -> pd.DataFrame:
    if not isinstance(rows, list) or not rows:
        raise BadInput(f"{SOURCE}: expected a non-empty list of rows")
    for position, row in enumerate(rows, start=1):
        if not isinstance(row, list) or len(row) != len(columns):
            raise BadInput(
                f"{SOURCE}: row {position} has {len(row) if isinstance(row, list) else 'no'} "
                f"values for {len(columns)} columns ({', '.join(map(repr, columns))})",
                rows=[position],
            )
    return pd.DataFrame(rows, columns=list(columns))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _formats() -> str:
    return ", ".join(f"'{name}'" for name in MLFLOW_FORMATS)
