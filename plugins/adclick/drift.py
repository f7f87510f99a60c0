"""Data drift of a scored batch against the training data of the version that scored it.

Every model version keeps a bounded random sample of its training data's features beside it in
the registry (:data:`adclick.registry.REFERENCE_FILE`, at most :data:`REFERENCE_ROWS` rows),
so retention can never leave a champion without its reference. A batch's drift report
compares the features of its predictions file with that sample using Evidently's
``DataDriftPreset``: one test per column (the method Evidently picks for the column's type and
size), and the share of drifted columns. A batch of more than :data:`SAMPLE_ROWS` rows is
compared through a random sample of that many rows, which the report's title and its summary
state.

The report is written beside the predictions, ``<version>.drift.html`` (Evidently's report)
and ``<version>.drift.json`` (the share, each column's method, score, threshold and verdict),
each whole or not at all. A share of drifted columns at or above the threshold (default
:data:`DEFAULT_THRESHOLD`, Evidently's own dataset-drift rule) is drift.

Evidently is imported only when a report is made: its import takes seconds and pulls in
plotly, scipy and statsmodels, which nothing else here needs.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from adclick import defaults, storage
from adclick.errors import ArtifactError, ConfigError, DataValidationError
from adclick.registry import REFERENCE_FILE, ModelRegistry
from adclick.storage import StoragePath

REFERENCE_ROWS = 5_000  # the training rows kept with each version
SAMPLE_ROWS = 50_000  # a larger batch is compared through a sample of this many rows
DEFAULT_THRESHOLD = defaults.DRIFT_THRESHOLD
SEED = 0  # samples are reproducible: the same batch gives the same report
HTML_SUFFIX = ".drift.html"
JSON_SUFFIX = ".drift.json"


class NoReferenceError(ArtifactError):
    """The model version has no reference sample (registered before versions kept one)."""


def check_threshold(value: object) -> float:
    """``value`` as a share of drifted columns, a number above 0 and at most 1."""
    try:
        threshold = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        threshold = math.nan
    if isinstance(value, bool) or not 0 < threshold <= 1:  # NaN fails too
        raise ConfigError(
            f"drift_threshold must be a share of drifted columns above 0 and at most 1, "
            f"not {value!r}"
        )
    return threshold


def reference_sample(
    frame: pd.DataFrame, features: Sequence[str], rows: int = REFERENCE_ROWS
) -> bytes:
    """At most ``rows`` random rows of ``frame``'s ``features``, as Parquet bytes."""
    chosen = frame[list(features)]
    if len(chosen) > rows:
        chosen = chosen.sample(n=rows, random_state=SEED).sort_index()
    buffer = io.BytesIO()
    chosen.reset_index(drop=True).to_parquet(buffer, index=False)
    return buffer.getvalue()


def load_reference(model_dir: StoragePath | str, version: str) -> pd.DataFrame:
    """The reference sample kept with ``version``; :class:`NoReferenceError` when it has none."""
    registry = ModelRegistry(model_dir)
    data = registry.version_file(version, REFERENCE_FILE)
    if data is None:
        raise NoReferenceError(
            f"model directory {registry.model_dir}: version {version} has no {REFERENCE_FILE} "
            "(it was registered without a reference sample); train a new version to get "
            "drift reports"
        )
    return pd.read_parquet(io.BytesIO(data))


def read_sample(
    predictions: StoragePath | str, features: Sequence[str], rows: int = SAMPLE_ROWS
) -> tuple[pd.DataFrame, int]:
    """The ``features`` of a predictions file, at most ``rows`` random rows of them, and how
    many rows the file holds."""
    path = storage.location(predictions)
    try:
        with path.open("rb") as handle:
            parquet = pq.ParquetFile(handle)
            missing = [f for f in features if f not in parquet.schema_arrow.names]
            if missing:
                raise DataValidationError(
                    path, "the model's feature is not among the columns", column=missing[0]
                )
            table = parquet.read(columns=list(features))
    except (*storage.errors(path), pa.ArrowInvalid) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DataValidationError(path, "no such predictions file") from None
        raise DataValidationError(path, f"cannot read the predictions: {exc}") from None
    total = table.num_rows
    if total > rows:
        picked = np.sort(np.random.default_rng(SEED).choice(total, size=rows, replace=False))
        table = table.take(pa.array(picked))
    return table.to_pandas(), total


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    title: str = "Data drift",
    html_out: Path | None = None,
) -> dict[str, Any]:
    """Evidently's data drift of ``current`` against ``reference`` over ``features``:
    ``{"share", "drifted", "columns": {name: {"method", "score", "threshold", "drifted"}},
    "drifted_columns", "drift"}``; the HTML report goes to ``html_out`` when given."""
    evidently = load_evidently()
    numerical = [f for f in features if _is_numeric(reference[f])]
    categorical = [f for f in features if f not in numerical]
    current = current[list(features)].copy()
    for column in numerical:
        try:
            current[column] = pd.to_numeric(current[column])
        except (TypeError, ValueError):
            raise DataValidationError(
                "current data", "values are not numbers as in the training data", column=column
            ) from None
    definition = evidently.DataDefinition(
        numerical_columns=numerical, categorical_columns=categorical
    )
    report = evidently.Report(
        [evidently.DataDriftPreset(columns=list(features), drift_share=threshold)],
        include_tests=True,
    )
    snapshot = report.run(
        evidently.Dataset.from_pandas(current, data_definition=definition),
        evidently.Dataset.from_pandas(reference[list(features)], data_definition=definition),
        name=title,
    )
    if html_out is not None:
        page = snapshot.get_html_str(as_iframe=False)
        html_out.write_text(page.replace("<body>", "<body>" + _HEADING.render(title=title), 1))
    return _summary(snapshot.dict(), threshold)


# Evidently's page does not show the run's name: the comparison (and any sample) is stated
# above it.
_HEADING = jinja2.Environment(autoescape=True).from_string(
    '<h2 style="font-family:sans-serif;margin:16px">{{ title }}</h2>'
)


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _summary(result: Mapping[str, Any], threshold: float) -> dict[str, Any]:
    """The numbers of Evidently's result: its ``DriftedColumnsCount`` and, per column, the
    ``ValueDrift`` score with the verdict of the column's test."""
    verdicts = {
        test["metric_config"]["metric_id"]: test["status"]
        for test in result.get("tests", [])
        if "metric_config" in test
    }
    columns: dict[str, dict[str, Any]] = {}
    share = None
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith(":ValueDrift"):
            columns[config["column"]] = {
                "method": config.get("method"),
                "score": _number(metric["value"]),
                "threshold": config.get("threshold"),
                "drifted": verdicts.get(metric["id"]) == "FAIL",
            }
    if share is None:
        raise ArtifactError("Evidently's report holds no share of drifted columns")
    drifted = [name for name, column in columns.items() if column["drifted"]]
    return {
        "share": share,
        "threshold": threshold,
        "drift": share >= threshold,
        "drifted_columns": drifted,
        "columns": columns,
    }


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def report_paths(predictions: StoragePath | str) -> tuple[StoragePath, StoragePath]:
    """``<version>.drift.html`` and ``<version>.drift.json`` beside ``<version>.parquet``."""
    path = storage.location(predictions)
    stem = path.name.removesuffix(".parquet")
    return path.with_name(stem + HTML_SUFFIX), path.with_name(stem + JSON_SUFFIX)


def report_batch(
    model_dir: StoragePath | str,
    predictions: StoragePath | str,
    version: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    sample_rows: int = SAMPLE_ROWS,
) -> dict[str, Any]:
    """The drift report of a predictions file against the reference of model ``version``
    (the one that scored it) over the features it was trained on, written beside the file
    (:func:`report_paths`), HTML and JSON each whole or not at all. Returns what the JSON
    holds."""
    threshold = check_threshold(threshold)
    reference = load_reference(model_dir, version)
    metadata = ModelRegistry(model_dir).version_info(version)["metadata"]
    features = metadata["features"]
    current, total = read_sample(predictions, features, sample_rows)
    predictions = storage.location(predictions)
    html_out, json_out = report_paths(predictions)
    sampled = len(current) < total
    title = (
        f"Data drift of {predictions.parent.name} ({len(current)} "
        f"{f'sampled of {total} ' if sampled else ''}rows) against model version {version}'s "
        f"training sample ({len(reference)} rows)"
    )
    with tempfile.TemporaryDirectory(prefix="adclick-drift-") as local:
        staged_html = storage.staging_name(html_out, Path(local))
        staged_json = storage.staging_name(json_out, Path(local))
        try:
            found = compare(
                reference, current, features, threshold=threshold, title=title, html_out=staged_html
            )
            summary = {
                **found,
                "model": metadata.get("model"),
                "model_version": version,
                "predictions": str(predictions),
                "rows": total,
                "compared_rows": len(current),
                "sampled": sampled,
                "reference_rows": len(reference),
                "html": str(html_out),
                "json": str(json_out),
                "made_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            staged_json.write_text(json.dumps(summary, indent=2), encoding="utf-8")
            storage.publish(staged_html, html_out)
            storage.publish(staged_json, json_out)
        except BaseException:
            for staged in (staged_html, staged_json):
                staged.unlink(missing_ok=True)
            raise
    return summary


def describe(summary: Mapping[str, Any]) -> str:
    """One line for logs and mails: the share, the drifted columns, the report."""
    drifted = summary["drifted_columns"]
    return (
        f"{summary['share']:.0%} of the columns drifted (threshold {summary['threshold']:.0%})"
        f"{': ' + ', '.join(drifted) if drifted else ''}; report {summary['html']}"
    )


def load_evidently() -> Any:
    """Evidently's entry points, its usage reporting off."""
    for variable, value in defaults.EVIDENTLY_NO_TELEMETRY.items():
        os.environ.setdefault(variable, value)
    _pandas_compat()
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    return SimpleNamespace(
        DataDefinition=DataDefinition,
        Dataset=Dataset,
        Report=Report,
        DataDriftPreset=DataDriftPreset,
    )


def _pandas_compat() -> None:
    """Evidently 0.7.23 imports ``infer_dtype_from_object``, which pandas 3 removed, in a
    legacy module it loads at import (a column-type test these reports never run)."""
    from pandas.core.dtypes import common

    if not hasattr(common, "infer_dtype_from_object"):
        common.infer_dtype_from_object = lambda dtype: np.dtype(dtype).type
