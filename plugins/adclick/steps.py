"""The training pipeline as file-based steps over one run's working directory.

Each step reads the previous step's Parquet/joblib file from ``workdir`` and returns a small
JSON-able dict (it travels in Airflow's XCom), so steps can run in separate processes or
retry alone. Each step also leaves its dict in ``workdir/<step>.json`` for later steps.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn

from adclick import model
from adclick.dataset import read_dataset
from adclick.errors import DataValidationError, QualityGateError
from adclick.registry import ModelRegistry
from adclick.schema import DEFAULT_MIN_ROWS, FEATURES, REQUIRED, TARGET

RAW = "raw.parquet"
CLEAN = "clean.parquet"
TRAIN = "train.parquet"
TEST = "test.parquet"
MODEL = "model.joblib"
DEFAULT_MIN_ACCURACY = 0.9


def load_data(data_path: Path, workdir: Path, *, min_rows: int = DEFAULT_MIN_ROWS) -> dict:
    """Validate the CSV and keep its required columns as ``raw.parquet``.

    Returns ``{"path", "rows", "data_hash", "source"}``; ``data_hash`` is the CSV's SHA-256.
    """
    dataset = read_dataset(data_path, min_rows=min_rows)
    out = Path(workdir) / RAW
    dataset.frame.to_parquet(out, index=False)
    return _record(
        workdir,
        "load_data",
        {
            "path": str(out),
            "rows": dataset.rows,
            "data_hash": dataset.sha256,
            "source": str(dataset.source),
        },
    )


def data_preprocessing(workdir: Path) -> dict:
    """Features as float64 and the target as int8, in a fixed column order: ``clean.parquet``."""
    frame = pd.read_parquet(Path(workdir) / RAW, columns=list(REQUIRED))
    clean = frame.astype({**dict.fromkeys(FEATURES, "float64"), TARGET: "int8"})
    out = Path(workdir) / CLEAN
    clean.to_parquet(out, index=False)
    return _record(
        workdir,
        "data_preprocessing",
        {"path": str(out), "rows": len(clean), "features": list(FEATURES), "target": TARGET},
    )


def separate_data_outputs(
    workdir: Path,
    test_size: float = model.DEFAULT_TEST_SIZE,
    random_state: int = model.DEFAULT_RANDOM_STATE,
) -> dict:
    """Stratified split into ``train.parquet`` and the hold-out ``test.parquet``."""
    workdir = Path(workdir)
    frame = pd.read_parquet(workdir / CLEAN)
    try:
        train, test = model.split(frame, test_size=test_size, random_state=random_state)
    except ValueError as exc:  # e.g. a class too small to appear on both sides
        source = _recorded(workdir, "load_data").get("source", workdir / CLEAN)
        raise DataValidationError(source, f"cannot split train/hold-out: {exc}") from None
    train.to_parquet(workdir / TRAIN, index=False)
    test.to_parquet(workdir / TEST, index=False)
    return _record(
        workdir,
        "separate_data_outputs",
        {
            "train_rows": len(train),
            "test_rows": len(test),
            "test_size": test_size,
            "random_state": random_state,
            "train_path": str(workdir / TRAIN),
            "test_path": str(workdir / TEST),
        },
    )


def build_model(workdir: Path, random_state: int = model.DEFAULT_RANDOM_STATE) -> dict:
    """Fit the pipeline on ``train.parquet``, save ``model.joblib``, return hold-out metrics."""
    workdir = Path(workdir)
    fitted = model.fit(pd.read_parquet(workdir / TRAIN), random_state=random_state)
    joblib.dump(fitted, workdir / MODEL)
    return _record(workdir, "build_model", model.evaluate(fitted, pd.read_parquet(workdir / TEST)))


def load_model(
    workdir: Path,
    model_dir: Path,
    min_accuracy: float,
    run_id: str,
    metadata: Mapping[str, Any] | None = None,
) -> dict:
    """Reload the saved model, score it again and register it; promote it if it passes.

    Scoring the reloaded file proves the stored artifact works, not just the object in memory.
    Below ``min_accuracy`` the version is kept (for inspection) but not promoted, and
    :class:`QualityGateError` is raised. Returns ``{"version", "model_path", "promoted",
    "metrics"}``.
    """
    workdir = Path(workdir)
    metrics = model.evaluate(joblib.load(workdir / MODEL), pd.read_parquet(workdir / TEST))
    passed = metrics["accuracy"] >= min_accuracy
    loaded = _recorded(workdir, "load_data")
    split = _recorded(workdir, "separate_data_outputs")
    full_metadata = {
        "source": loaded.get("source"),
        "data_hash": loaded.get("data_hash"),
        "rows": loaded.get("rows"),
        "train_rows": split.get("train_rows"),
        "test_rows": split.get("test_rows"),
        "test_size": split.get("test_size"),
        "random_state": split.get("random_state"),
        **{k: v for k, v in (metadata or {}).items() if v is not None},
        "run_id": run_id,
        "features": list(FEATURES),
        "target": TARGET,
        "libraries": library_versions(),
        "quality_gate": {"min_accuracy": min_accuracy, "passed": passed},
    }
    result = ModelRegistry(model_dir).register(
        workdir / MODEL, metrics, full_metadata, promote=passed
    )
    if not passed:
        raise QualityGateError(
            f"model {result['version']}: accuracy {metrics['accuracy']:.4f} is below "
            f"min_accuracy {min_accuracy:.4f}; kept as a rejected version, the current "
            f"model in {model_dir} is unchanged",
            result,
        )
    return _record(workdir, "load_model", result)


def run(
    data_path: Path,
    model_dir: Path,
    workdir: Path,
    *,
    min_accuracy: float = DEFAULT_MIN_ACCURACY,
    test_size: float = model.DEFAULT_TEST_SIZE,
    random_state: int = model.DEFAULT_RANDOM_STATE,
    run_id: str,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> dict:
    """All steps in order, in this process: what the DAG does, without Airflow.

    Returns a summary with ``accuracy``, ``version``, ``promoted``, ``model_path`` and
    ``metrics``. A :class:`QualityGateError` carries the same summary in ``result``.
    """
    loaded = load_data(data_path, workdir, min_rows=min_rows)
    data_preprocessing(workdir)
    split = separate_data_outputs(workdir, test_size=test_size, random_state=random_state)
    build_model(workdir, random_state=random_state)
    context = {
        "run_id": run_id,
        "source": loaded["source"],
        "rows": loaded["rows"],
        "data_hash": loaded["data_hash"],
        "train_rows": split["train_rows"],
        "test_rows": split["test_rows"],
        "min_accuracy": min_accuracy,
    }
    try:
        result = load_model(workdir, model_dir, min_accuracy, run_id)
    except QualityGateError as exc:
        exc.result = _summary(exc.result, context)
        raise
    return _summary(result, context)


def _summary(result: Mapping[str, Any], context: Mapping[str, Any]) -> dict:
    return {"accuracy": result["metrics"]["accuracy"], **result, **context}


def library_versions() -> dict[str, str]:
    """Versions a stored model depends on: joblib files only load reliably under the same."""
    return {
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
    }


def _record(workdir: Path, step: str, result: dict) -> dict:
    (Path(workdir) / f"{step}.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def _recorded(workdir: Path, step: str) -> dict:
    try:
        return json.loads((Path(workdir) / f"{step}.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
