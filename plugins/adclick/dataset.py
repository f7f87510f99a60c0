"""Load the advertising CSV and refuse, with a precise message, anything a model cannot use."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from adclick import csvfile, source
from adclick.csvfile import CsvFile
from adclick.errors import MAX_LINES_SHOWN, DataValidationError
from adclick.schema import CLASSES, DEFAULT_MIN_ROWS, REQUIRED, TARGET

_RAGGED = re.compile(r"Expected \d+ fields in line \d+, saw \d+")


@dataclass(frozen=True)
class Dataset:
    """The validated columns the model uses, and where they came from."""

    frame: pd.DataFrame
    source: Path
    sha256: str

    @property
    def rows(self) -> int:
        return len(self.frame)


def read_dataset(
    path: Path | str,
    *,
    min_rows: int = DEFAULT_MIN_ROWS,
    root: Path | None = None,
    max_bytes: int | None = None,
) -> Dataset:
    """Read and validate ``path``; raise :class:`DataValidationError` for anything unusable.

    Checks: a regular file (opened once, see :func:`adclick.source.open_dataset`, inside
    ``root`` when given) of at most ``max_bytes`` (default: :func:`max_bytes_from_env`), readable,
    non-empty UTF-8 (a UTF-8 BOM is fine), comma-separated, the required columns present once
    each (names compared after stripping surrounding whitespace, extra columns ignored), every
    row with as many fields as the header, numeric columns numeric, finite and not missing, the
    target 0 or 1 with both classes, at least ``min_rows`` data rows. The frame holds only the
    required columns, in schema order.
    """
    limit = source.max_bytes_from_env() if max_bytes is None else max_bytes
    with source.open_dataset(path, root=root, max_bytes=limit) as opened:
        checked = csvfile.inspect(opened)
        frame = _read_frame(checked)
        if frame.empty:
            raise DataValidationError(checked.path, "no data rows after the header")
        frame = _validated(checked, frame)
        opened.check_unchanged()
    if len(frame) < min_rows:
        raise DataValidationError(
            checked.path, f"only {len(frame)} data rows; at least {min_rows} are needed"
        )
    _check_classes(checked, frame[TARGET])
    return Dataset(frame=frame, source=checked.path, sha256=checked.sha256)


def _read_frame(checked: CsvFile) -> pd.DataFrame:
    """Parse with pandas' C reader and keep the required columns.

    Every column is parsed (not ``usecols``) because only then does pandas notice rows with
    too many fields: with ``usecols`` it drops the extra fields silently, which would hide
    a shifted row. The unused text columns are released right after. Other warnings
    (mixed types in a column) are dropped: the value checks report those precisely.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with checked.source.binary() as handle:
                frame = pd.read_csv(
                    handle, sep=",", encoding=checked.encoding, index_col=False, engine="c"
                )
    except pd.errors.ParserError as exc:
        raise _parser_error(checked, exc) from None
    except (ValueError, OverflowError, pd.errors.EmptyDataError) as exc:
        problem = f"cannot parse as CSV: {_first_line(exc)}"
        raise DataValidationError(checked.path, problem) from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        # pandas drops the extra fields of a too-long first row with only this warning
        ragged = csvfile.ragged_rows(checked)
        if ragged is not None:
            raise ragged
    if frame.shape[1] != len(checked.header):
        raise DataValidationError(checked.path, "the header cannot be parsed", lines=[1])
    positions = [checked.position(column) for column in REQUIRED]
    frame = frame.iloc[:, positions]
    frame.columns = list(REQUIRED)
    return frame


def _parser_error(checked: CsvFile, exc: Exception) -> DataValidationError:
    message = _first_line(exc)
    if _RAGGED.search(message):
        ragged = csvfile.ragged_rows(checked)
        if ragged is not None:
            return ragged
    if "EOF inside string" in message:
        return DataValidationError(
            checked.path,
            'a quoted field is never closed (unmatched ")',
            lines=[csvfile.unclosed_quote_line(checked)],
        )
    return DataValidationError(checked.path, f"cannot parse as CSV: {message}")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _validated(checked: CsvFile, frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric, finite, present values; target 0/1. The first problem found is raised.

    Rows with a wrong field count are reported instead when present, as they explain
    values that landed in the wrong column.
    """
    columns = {}
    for column in REQUIRED:
        values, bad, problem = _check_column(frame[column], is_target=column == TARGET)
        if problem:
            ragged = csvfile.ragged_rows(checked)
            raise ragged or _value_error(checked, frame[column], column, bad, problem)
        columns[column] = values
    return pd.DataFrame(columns, copy=False)


def _check_column(series: pd.Series, *, is_target: bool) -> tuple[pd.Series, np.ndarray, str]:
    """The column as numbers, plus a mask of bad rows and what is wrong with them ("" if fine)."""
    missing = series.isna().to_numpy(copy=True)
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        numbers, not_number = series, np.zeros(len(series), dtype=bool)
    else:
        text = series.astype("str")
        missing |= (text.str.strip() == "").to_numpy(dtype=bool, na_value=False)
        numbers = pd.to_numeric(text.where(~missing), errors="coerce")
        not_number = numbers.isna().to_numpy() & ~missing
    if missing.any():
        return numbers, missing, "missing value"
    if not_number.any():
        return numbers, not_number, "must be 0 or 1" if is_target else "not a number"
    values = numbers.to_numpy()
    infinite = ~np.isfinite(values.astype("float64"))
    if infinite.any():
        return numbers, infinite, "not a finite number"
    if is_target:
        not_class = ~np.isin(values, CLASSES)
        if not_class.any():
            return numbers, not_class, "must be 0 or 1"
    return numbers, np.zeros(len(series), dtype=bool), ""


def _value_error(
    checked: CsvFile, series: pd.Series, column: str, bad: np.ndarray, problem: str
) -> DataValidationError:
    indices = np.flatnonzero(bad)
    shown = indices[:MAX_LINES_SHOWN]
    if problem != "missing value":
        values = ", ".join(dict.fromkeys(_show(series.iloc[i]) for i in shown))
        problem = f"{problem} (found {values})"
    elif len(indices) > 1:
        problem = "missing values"
    return DataValidationError(
        checked.path,
        problem,
        column=column,
        lines=csvfile.lines_of(checked, shown),
        count=len(indices),
    )


def _show(value: object, limit: int = 40) -> str:
    if isinstance(value, str):
        text = value if len(value) <= limit else value[: limit - 3] + "..."
        return repr(text)
    if isinstance(value, float | np.floating):
        return f"{value:g}"
    return str(value)


def _check_classes(checked: CsvFile, target: pd.Series) -> None:
    counts = target.value_counts()
    if len(counts) < len(CLASSES):
        only = int(counts.index[0])
        raise DataValidationError(
            checked.path,
            f"only class {only} is present ({int(counts.iloc[0])} rows); both 0 and 1 are "
            "needed to train",
            column=TARGET,
        )
