"""Batch scoring: a CSV through a model's champion, into one Parquet and one CSV file.

The champion is the version the registry's ``current`` names, its model file's bytes checked
against the SHA-256 recorded with it before they are unpickled. The input is checked against
the features the champion was trained on, with the training data's checks (file, column,
CSV lines), and read, checked and scored a chunk at a time, so memory stays flat however long
the file is. The output holds the input's rows as read, then ``prediction`` (the original
label, or the number for a regression), ``probability_<label>`` per class when the model
gives probabilities, and ``model_version``.

Both outputs are written under temporary names (locally, or beside a store's objects on
local disk) and published only once the whole input is scored: a failure leaves neither.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from adclick import csvfile, source, storage
from adclick.dataset import check_features, read_chunks
from adclick.errors import DataValidationError, ModelNotFoundError
from adclick.registry import ModelRegistry
from adclick.storage import StoragePath
from adclick_contract import PREDICTIONS_DIR

INCOMING_DIR = "incoming"  # the scoring inbox, under the data root
CHUNK_ROWS = 50_000
PREDICTION = "prediction"
PROBABILITY_PREFIX = "probability_"
VERSION_COLUMN = "model_version"
_CSV_OPTIONS = pa_csv.WriteOptions(quoting_style="needed")


@dataclass(frozen=True)
class Champion:
    """A loaded model version and what it was trained on."""

    name: str
    version: str
    model: Any
    features: tuple[str, ...]
    task: str
    labels: tuple[Any, ...] | None
    allow_missing: bool = False

    @property
    def display(self) -> str:
        return f"model {self.name} version {self.version}"

    @property
    def probability_columns(self) -> list[str]:
        if self.labels is None or not hasattr(self.model, "predict_proba"):
            return []
        return [f"{PROBABILITY_PREFIX}{label}" for label in self.labels]

    @property
    def added_columns(self) -> list[str]:
        return [PREDICTION, *self.probability_columns, VERSION_COLUMN]


def load_champion(model_dir: StoragePath | str) -> Champion:
    """The current version of the registry at ``model_dir``, its file's hash checked."""
    registry = ModelRegistry(model_dir)
    loaded = registry.load_current()  # the one hash check every load goes through
    if loaded is None:
        raise ModelNotFoundError(
            f"model directory {registry.model_dir}: no current model to score with; "
            "train one that passes its gate first"
        )
    current, fitted = loaded
    metadata = current["metadata"]
    labels = metadata.get("labels")
    return Champion(
        name=str(metadata.get("model", "")),
        version=current["version"],
        model=fitted,
        features=tuple(metadata["features"]),
        task=str(metadata.get("task", "")),
        labels=tuple(labels) if labels is not None else None,
        allow_missing=bool(metadata.get("allow_missing", False)),
    )


def input_name(data_path: StoragePath | str) -> str:
    """The batch's name in ``predictions/``: its file name without ``.csv``."""
    name = storage.location(data_path).name
    return name[: -len(".csv")] if name.lower().endswith(".csv") and len(name) > 4 else name


def prediction_paths(
    data_root: StoragePath | str, data_path: StoragePath | str, version: str
) -> tuple[StoragePath, StoragePath]:
    """``predictions/<input name>/<version>.parquet`` and ``.csv`` under ``data_root``."""
    folder = storage.location(data_root) / PREDICTIONS_DIR / input_name(data_path)
    return folder / f"{version}.parquet", folder / f"{version}.csv"


def score_csv(
    data_path: StoragePath | str,
    champion: Champion,
    parquet_out: StoragePath | str,
    csv_out: StoragePath | str | None = None,
    *,
    root: StoragePath | None = None,
    max_bytes: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, Any]:
    """Score the CSV at ``data_path`` (inside ``root`` when given, at most ``max_bytes``,
    default :func:`adclick.source.max_bytes_from_env`) with ``champion``, ``chunk_rows`` rows
    at a time; write ``parquet_out`` and ``csv_out`` (default: beside it, ``.csv``) whole, or
    nothing. :class:`DataValidationError` names the file, column and lines of bad input."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    parquet_out = storage.location(parquet_out)
    csv_out = storage.location(csv_out) if csv_out is not None else _beside(parquet_out)
    limit = source.max_bytes_from_env() if max_bytes is None else max_bytes
    with tempfile.TemporaryDirectory(prefix="adclick-score-") as local:
        staged = [storage.staging_name(out, Path(local)) for out in (parquet_out, csv_out)]
        created = _missing_folders(parquet_out)
        if storage.is_local(parquet_out):
            Path(parquet_out).parent.mkdir(parents=True, exist_ok=True)
        try:
            summary = _score_into(
                data_path,
                champion,
                staged[0],
                staged[1],
                root=root,
                max_bytes=limit,
                chunk_rows=chunk_rows,
            )
            # The CSV first: the Parquet file, which readers look for, appears last.
            storage.publish(staged[1], csv_out)
            try:
                storage.publish(staged[0], parquet_out)
            except BaseException:
                storage.discard(csv_out)
                raise
        except BaseException:
            for path in staged:
                path.unlink(missing_ok=True)
            for folder in created:  # innermost first
                folder.rmdir()
            raise
    return {
        **summary,
        "parquet": str(parquet_out),
        "csv": str(csv_out),
        "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _missing_folders(out: StoragePath) -> list[Path]:
    """The local folders above ``out`` that do not exist yet, innermost first: a failed
    run removes what it made."""
    if not storage.is_local(out):
        return []
    missing = []
    folder = Path(out).parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def _beside(parquet_out: StoragePath) -> StoragePath:
    return parquet_out.with_suffix(".csv")


def _score_into(
    data_path: StoragePath | str,
    champion: Champion,
    parquet_file: Path,
    csv_file: Path,
    *,
    root: StoragePath | None,
    max_bytes: int,
    chunk_rows: int,
) -> dict[str, Any]:
    rows = chunks = 0
    writers: tuple[pq.ParquetWriter, pa_csv.CSVWriter] | None = None
    with source.open_dataset(data_path, root=root, max_bytes=max_bytes) as opened:
        checked = csvfile.inspect(opened, champion.features)
        taken = sorted(set(checked.header) & set(champion.added_columns))
        if taken:
            raise DataValidationError(
                checked.path,
                f"column '{taken[0]}' is one the predictions add; rename it in the input",
                lines=[1],
            )
        ragged_checked = False
        try:
            for chunk in read_chunks(checked, chunk_rows):
                if not ragged_checked and chunk.iloc[:, -1].isna().any():
                    # pandas fills a row with too few fields with gaps, silently
                    ragged_checked = True
                    if (ragged := csvfile.ragged_rows(checked)) is not None:
                        raise ragged
                scored = _score_chunk(checked, champion, chunk, rows)
                table = pa.Table.from_pandas(scored, preserve_index=False)
                if writers is None:
                    schema = _widened(table, champion)
                    writers = (
                        pq.ParquetWriter(parquet_file, schema),
                        # pyarrow's writer: pandas' to_csv took most of the time of a batch
                        pa_csv.CSVWriter(csv_file, schema, write_options=_CSV_OPTIONS),
                    )
                table = _cast(checked, table, writers[0].schema, rows, len(scored))
                for writer in writers:
                    writer.write_table(table)
                rows += len(scored)
                chunks += 1
        finally:
            for writer in writers or ():
                writer.close()
        if rows == 0:
            raise DataValidationError(checked.path, "no data rows after the header")
        opened.check_unchanged()
    return {
        "model": champion.name,
        "model_version": champion.version,
        "input": str(checked.path),
        "input_sha256": checked.sha256,
        "rows": rows,
        "chunks": chunks,
    }


def _score_chunk(
    checked: csvfile.CsvFile, champion: Champion, chunk: pd.DataFrame, offset: int
) -> pd.DataFrame:
    def lines(positions: Sequence[int]) -> list[int]:
        return csvfile.lines_of(checked, [offset + p for p in positions])

    check_features(
        champion.display, champion.features, chunk, checked.path, lines, champion.allow_missing
    )
    features = chunk[list(champion.features)]
    try:
        added = predict(champion, features)
    except Exception as exc:  # the model's own refusal, whatever its type
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataValidationError(
            checked.path,
            f"{champion.display} cannot score the {len(chunk)} rows from here: "
            f"{type(exc).__name__}: {message}",
            lines=lines([0]),
        ) from exc
    return pd.concat([chunk.reset_index(drop=True), added], axis=1)


def predict(champion: Champion, features: pd.DataFrame) -> pd.DataFrame:
    """The columns scoring adds to ``features`` (:attr:`Champion.added_columns`): the
    prediction as the original label, each class's probability, the model version."""
    model = champion.model
    columns: dict[str, Any] = {PREDICTION: model.predict(features)}
    if champion.probability_columns:
        probabilities = model.predict_proba(features)
        order = [list(model.classes_).index(label) for label in champion.labels or ()]
        for name, index in zip(champion.probability_columns, order, strict=True):
            columns[name] = probabilities[:, index]
    columns[VERSION_COLUMN] = np.full(len(features), champion.version, dtype=object)
    return pd.DataFrame(columns)


def _widened(first: pa.Table, champion: Champion) -> pa.Schema:
    """The first chunk's types, made to fit the chunks after it: an input column of integers
    may have gaps further down (floats), a column of gaps only may hold text."""
    fields = []
    for field in first.schema:
        if field.name in champion.added_columns:
            fields.append(field)
        elif first.column(field.name).null_count == first.num_rows:
            fields.append(field.with_type(pa.large_string()))
        elif pa.types.is_integer(field.type):
            fields.append(field.with_type(pa.float64()))
        else:
            fields.append(field)
    return pa.schema(fields)


def _cast(
    checked: csvfile.CsvFile, table: pa.Table, schema: pa.Schema, offset: int, count: int
) -> pa.Table:
    """A later chunk in the first chunk's types; a column whose values changed kind names the
    rows of the chunk."""
    for field in schema:
        column = table.column(field.name)
        if column.type == field.type:
            continue
        try:
            column.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataValidationError(
                checked.path,
                f"values of type {column.type} from here on, where the rows before have "
                f"{field.type}",
                column=field.name,
                lines=csvfile.lines_of(checked, [offset]),
            ) from None
    return table.select(schema.names).cast(schema)


def describe(summary: Mapping[str, Any]) -> str:
    """One line for logs and mails: what was scored with which version, and where it went."""
    return (
        f"{summary['input']}: {summary['rows']} rows scored with model {summary['model']} "
        f"version {summary['model_version']} -> {summary['parquet']}"
    )
