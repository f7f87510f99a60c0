"""Load a model's CSV and refuse, with a precise message, anything the model cannot use."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from adclick import csvfile, defaults, source, storage
from adclick.contract import ModelSpec
from adclick.csvfile import CsvFile
from adclick.errors import MAX_LINES_SHOWN, DataValidationError

_RAGGED = re.compile(r"Expected \d+ fields in line \d+, saw \d+")


@dataclass(frozen=True)
class Dataset:
    """The columns the model reads (every column, when its ``data_preprocessing`` runs
    next), and where they came from."""

    frame: pd.DataFrame
    source: Path
    sha256: str

    @property
    def rows(self) -> int:
        return len(self.frame)


def read_dataset(
    path: Path | str,
    spec: ModelSpec,
    *,
    min_rows: int = defaults.MIN_ROWS,
    root: Path | None = None,
    max_bytes: int | None = None,
) -> Dataset:
    """Read and validate ``path`` for the model ``spec``; raise :class:`DataValidationError`
    for anything unusable.

    Checks: a regular file (opened once, see :func:`adclick.source.open_dataset`, inside
    ``root`` when given) of at most ``max_bytes`` (default: :func:`max_bytes_from_env`),
    readable, non-empty UTF-8 (a UTF-8 BOM is fine), comma-separated, every row with as many
    fields as the header, at least ``min_rows`` data rows. Without a ``data_preprocessing``
    the model's columns are checked here too (named in the header once each, names compared
    after stripping surrounding whitespace; the values by :func:`check_frame`, naming CSV
    lines), and the frame holds only them; with one, the frame holds every column as read
    and the model's columns are checked after it ran. Dtypes are pandas' as read.
    """
    try:
        return _read_dataset(path, spec, min_rows=min_rows, root=root, max_bytes=max_bytes)
    except DataValidationError as exc:
        if root is None:
            raise
        exc.shown_as(storage.relative_name(exc.path, root))
        raise


def _read_dataset(
    path: Path | str,
    spec: ModelSpec,
    *,
    min_rows: int,
    root: Path | None,
    max_bytes: int | None,
) -> Dataset:
    limit = source.max_bytes_from_env() if max_bytes is None else max_bytes
    direct = spec.data_preprocessing is None
    with source.open_dataset(path, root=root, max_bytes=limit) as opened:
        checked = csvfile.inspect(opened, spec.required if direct else ())
        frame = _read_frame(checked, spec.required if direct else None)
        if frame.empty:
            raise DataValidationError(checked.path, "no data rows after the header")
        if direct:
            frame = _validated(checked, frame, spec)
        opened.check_unchanged()
    if len(frame) < min_rows:
        raise DataValidationError(
            checked.path, f"only {len(frame)} data rows; at least {min_rows} are needed"
        )
    return Dataset(frame=frame, source=checked.path, sha256=checked.sha256)


def _read_frame(checked: CsvFile, columns: Sequence[str] | None) -> pd.DataFrame:
    """Parse with pandas' C reader and keep ``columns`` (None: all), named as the header's
    stripped names.

    Every column is parsed (not ``usecols``) because only then does pandas notice rows with
    too many fields: with ``usecols`` it drops the extra fields silently, which would hide
    a shifted row. The unused columns are released right after. Other warnings
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
    frame.columns = list(checked.header)
    if columns is None:
        return frame
    return frame.iloc[:, [checked.position(column) for column in columns]]


def read_chunks(checked: CsvFile, rows: int) -> Iterator[pd.DataFrame]:
    """The CSV ``rows`` data rows at a time (the index runs on across chunks), columns named
    as the header's stripped names, every column parsed (see :func:`_read_frame`); a parse
    error is the same :class:`DataValidationError` as :func:`read_dataset` gives."""
    with checked.source.binary() as handle:
        try:
            reader = pd.read_csv(
                handle,
                sep=",",
                encoding=checked.encoding,
                index_col=False,
                engine="c",
                chunksize=rows,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", pd.errors.DtypeWarning)
                for chunk in reader:
                    if chunk.shape[1] != len(checked.header):
                        raise DataValidationError(
                            checked.path, "the header cannot be parsed", lines=[1]
                        )
                    chunk.columns = list(checked.header)
                    yield chunk
        except pd.errors.ParserError as exc:
            raise _parser_error(checked, exc) from None
        except (ValueError, OverflowError, pd.errors.EmptyDataError) as exc:
            if isinstance(exc, DataValidationError):
                raise
            problem = f"cannot parse as CSV: {_first_line(exc)}"
            raise DataValidationError(checked.path, problem) from None


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


def _validated(checked: CsvFile, frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The model's columns checked (:func:`check_frame`), CSV lines named. Rows with a wrong
    field count are reported instead when present, as they explain values that landed in
    the wrong column."""
    try:
        check_frame(spec, frame, checked.path, lambda rows: csvfile.lines_of(checked, rows))
    except DataValidationError as error:
        raise csvfile.ragged_rows(checked) or error from None
    return frame


def check_frame(
    spec: ModelSpec,
    frame: pd.DataFrame,
    path: object,
    lines: Callable[[Sequence[int]], list[int]] | None = None,
) -> None:
    """What a model needs of its data, after its ``data_preprocessing``: the features and the
    target present; the target never missing, within ``LABELS`` (every label present) or, for
    regression, a finite number; numeric feature columns finite, and no stray text in a
    column of numbers. Missing feature values only where the module says its estimator takes
    them (``ALLOW_MISSING``, an imputer's business).

    ``lines`` maps 0-based row positions to the CSV's editor lines; without it rows are
    named by their position in the frame (``row 3`` is the third data row).
    """
    _check_present(spec.display, spec.required, frame, path)
    check_features(spec.display, spec.features, frame, path, lines, spec.allow_missing)
    bad, problem = _target_problem(spec, frame[spec.target])
    if problem:
        raise _value_error(path, frame[spec.target], spec.target, bad, problem, lines)
    if spec.labels is not None:
        _check_classes(path, spec, frame[spec.target])


def check_features(
    model: str,
    features: Sequence[str],
    frame: pd.DataFrame,
    path: object,
    lines: Callable[[Sequence[int]], list[int]] | None = None,
    allow_missing: bool = False,
) -> None:
    """The ``features`` of ``model`` (named in errors) present in ``frame``, each free of
    infinite numbers and of stray text in a column of numbers, and of gaps unless
    ``allow_missing``: what training checks of the features, and scoring of every batch."""
    _check_present(model, features, frame, path)
    for column in features:
        bad, problem = _feature_problem(frame[column])
        if not problem and not allow_missing:
            bad = _missing(frame[column])
            problem = "missing value" if bad.any() else ""
        if problem:
            raise _value_error(path, frame[column], column, bad, problem, lines)


def _check_present(model: str, columns: Sequence[str], frame: pd.DataFrame, path: object) -> None:
    absent = [column for column in columns if column not in frame.columns]
    if absent:
        listed = ", ".join(f"'{column}'" for column in absent)
        raise DataValidationError(
            path, f"{model}: column{'s' if len(absent) > 1 else ''} {listed} missing"
        )


def _target_problem(spec: ModelSpec, series: pd.Series) -> tuple[np.ndarray, str]:
    missing = _missing(series)
    if missing.any():
        return missing, "missing value"
    if spec.labels is None:
        return _feature_problem(series, numeric=True)
    not_label = ~series.isin(spec.labels).to_numpy()
    return not_label, f"must be {_listed(spec.labels, 'or')}" if not_label.any() else ""


def _feature_problem(series: pd.Series, *, numeric: bool = False) -> tuple[np.ndarray, str]:
    """Infinite numbers; and text among numbers: a column whose present values are mostly
    numbers (or all, when ``numeric``) is a numeric column with typos."""
    none = np.zeros(len(series), dtype=bool)
    if pd.api.types.is_bool_dtype(series):
        return none, ""
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        infinite = np.isinf(values)
        return infinite, "not a finite number" if infinite.any() else ""
    present = ~_missing(series)
    numbers = pd.to_numeric(series.astype("str").where(present), errors="coerce")
    not_number = numbers.isna().to_numpy() & present
    if not_number.any() and (numeric or not_number.sum() * 2 < present.sum()):
        return not_number, "not a number"
    infinite = np.isinf(numbers.to_numpy(dtype="float64", na_value=np.nan))
    return infinite, "not a finite number" if infinite.any() else ""


def _missing(series: pd.Series) -> np.ndarray:
    missing = series.isna().to_numpy(copy=True)
    if not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        missing |= (series.astype("str").str.strip() == "").to_numpy(dtype=bool) & ~missing
    return missing


def _listed(values: Sequence[object], conjunction: str) -> str:
    shown = [_show(value) for value in values]
    if len(shown) <= 2:
        return f" {conjunction} ".join(shown)
    return f"one of {', '.join(shown)}"


def _value_error(
    path: object,
    series: pd.Series,
    column: str,
    bad: np.ndarray,
    problem: str,
    lines: Callable[[Sequence[int]], list[int]] | None,
) -> DataValidationError:
    positions = np.flatnonzero(bad)
    shown = positions[:MAX_LINES_SHOWN].tolist()
    if problem != "missing value":
        values = ", ".join(dict.fromkeys(_show(series.iloc[i]) for i in shown))
        problem = f"{problem} (found {values})"
    elif len(positions) > 1:
        problem = "missing values"
    if lines is None:
        return DataValidationError(
            path,
            problem,
            column=column,
            lines=[i + 1 for i in shown],
            count=len(positions),
            unit="row",
        )
    return DataValidationError(
        path, problem, column=column, lines=lines(shown), count=len(positions)
    )


def _show(value: object, limit: int = 40) -> str:
    if isinstance(value, str):
        text = value if len(value) <= limit else value[: limit - 3] + "..."
        return repr(text)
    if isinstance(value, float | np.floating):
        return f"{value:g}"
    return str(value)


def _check_classes(path: object, spec: ModelSpec, target: pd.Series) -> None:
    counts = target.value_counts()
    absent = [label for label in spec.labels or () if label not in counts.index]
    if not absent:
        return
    present = ", ".join(f"{_show(label)} ({int(n)} rows)" for label, n in counts.items())
    needed = "both" if len(spec.labels or ()) == 2 else "all of"
    raise DataValidationError(
        path,
        f"only class{'es' if len(counts) > 1 else ''} {present} present; "
        f"{needed} {_listed(spec.labels or (), 'and').removeprefix('one of ')} are needed to train",
        column=spec.target,
    )
