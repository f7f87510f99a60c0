"""The training pipeline as file-based steps over one run's working directory.

Each step reads the files and records earlier steps left in ``workdir`` (see
:mod:`adclick.workdir`), writes its own, and returns its own small JSON-able result, which it
also leaves as its record. Nothing else passes between steps, so each can run in a separate
process (one Airflow task each) or retry alone.
"""

from __future__ import annotations

import io
import platform
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pandas as pd
import sklearn

from adclick import candidates as grid_rules
from adclick import defaults, model, storage
from adclick.dataset import read_dataset
from adclick.errors import ArtifactError, DataValidationError, QualityGateError
from adclick.registry import ModelRegistry
from adclick.schema import DEFAULT_MIN_ROWS, FEATURES, REQUIRED, TARGET
from adclick.storage import StoragePath
from adclick.workdir import (
    CLEAN,
    DATASET_RECORD,
    FEATURES_RECORD,
    METRICS_RECORD,
    MODEL,
    RAW,
    REGISTERED_RECORD,
    SPLIT_RECORD,
    TEST,
    TRAIN,
    candidate_dir,
    read_record,
    write_record,
)

if TYPE_CHECKING:
    from adclick.tracking import RunContext, Tracker


def ingest_csv(
    data_path: StoragePath,
    workdir: StoragePath,
    *,
    min_rows: int = DEFAULT_MIN_ROWS,
    root: StoragePath | None = None,
    max_bytes: int | None = None,
) -> dict:
    """Validate the CSV and keep its required columns as ``raw.parquet``.

    ``root`` and ``max_bytes`` bound what may be opened (see :func:`read_dataset`). Returns
    ``{"path", "rows", "data_hash", "source"}``; ``data_hash`` is the CSV's SHA-256.
    """
    dataset = read_dataset(data_path, min_rows=min_rows, root=root, max_bytes=max_bytes)
    out = storage.location(workdir) / RAW
    write_frame(dataset.frame, out)
    return write_record(
        workdir,
        DATASET_RECORD,
        {
            "path": str(out),
            "rows": dataset.rows,
            "data_hash": dataset.sha256,
            "source": str(dataset.source),
        },
    )


def select_features(workdir: StoragePath) -> dict:
    """Features as float64 and the target as int8, in a fixed column order: ``clean.parquet``."""
    workdir = storage.location(workdir)
    frame = read_frame(workdir / RAW, columns=list(REQUIRED))
    clean = frame.astype({**dict.fromkeys(FEATURES, "float64"), TARGET: "int8"})
    out = workdir / CLEAN
    write_frame(clean, out)
    return write_record(
        workdir,
        FEATURES_RECORD,
        {"path": str(out), "rows": len(clean), "features": list(FEATURES), "target": TARGET},
    )


def split_holdout(
    workdir: StoragePath,
    test_size: float = defaults.TEST_SIZE,
    random_state: int = defaults.RANDOM_STATE,
) -> dict:
    """Stratified split into ``train.parquet`` and the hold-out ``test.parquet``."""
    workdir = storage.location(workdir)
    frame = read_frame(workdir / CLEAN)
    try:
        train, test = model.split(frame, test_size=test_size, random_state=random_state)
    except ValueError as exc:  # e.g. a class too small to appear on both sides
        source = read_record(workdir, DATASET_RECORD).get("source", workdir / CLEAN)
        raise DataValidationError(source, f"cannot split train/hold-out: {exc}") from None
    write_frame(train, workdir / TRAIN)
    write_frame(test, workdir / TEST)
    return write_record(
        workdir,
        SPLIT_RECORD,
        {
            "train_rows": len(train),
            "test_rows": len(test),
            "test_size": test_size,
            "random_state": random_state,
            "train_path": str(workdir / TRAIN),
            "test_path": str(workdir / TEST),
        },
    )


def fit_and_score(
    workdir: StoragePath,
    random_state: int = defaults.RANDOM_STATE,
    candidate: Mapping[str, Any] | None = None,
    index: int = 0,
) -> dict:
    """Fit candidate ``index`` of the grid (its hyperparameters, see :mod:`adclick.candidates`)
    on ``train.parquet``, save its model in its own directory, score it on the hold-out.

    Returns ``{"index", "params", "metrics"}``; ``params`` are every hyperparameter the fit used.
    """
    workdir = storage.location(workdir)
    hyperparameters = grid_rules.check_candidate(dict(candidate or {}), f"candidates[{index}]")
    fitted = model.fit(read_frame(workdir / TRAIN), random_state, hyperparameters)
    own = candidate_dir(workdir, index)
    own.mkdir(parents=True, exist_ok=True)
    with (own / MODEL).open("wb") as out:
        joblib.dump(fitted, out)
    metrics = model.evaluate(fitted, read_frame(workdir / TEST))
    params = grid_rules.effective_hyperparameters(hyperparameters)
    return write_record(own, METRICS_RECORD, {"index": index, "params": params, "metrics": metrics})


def fitted_candidates(workdir: StoragePath, count: int) -> list[dict]:
    """The records of candidates ``0 .. count-1``; every one must have been fitted."""
    records = []
    for index in range(count):
        record = read_record(candidate_dir(workdir, index), METRICS_RECORD)
        if record.get("index") != index or not isinstance(record.get("metrics"), dict):
            raise ArtifactError(
                f"candidate {index} of {count} left no result in {candidate_dir(workdir, index)}"
            )
        records.append(record)
    return records


def best_candidate(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The highest hold-out accuracy; of equal ones the lowest index, so a rerun picks the same."""
    return min(records, key=lambda r: (-r["metrics"]["accuracy"], r["index"]))


def passes_gate(metrics: Mapping[str, Any], min_accuracy: float) -> bool:
    """The quality gate: hold-out accuracy at least ``min_accuracy`` (equal passes)."""
    return metrics["accuracy"] >= min_accuracy


def register_model(
    workdir: StoragePath,
    model_dir: StoragePath,
    min_accuracy: float,
    run_id: str,
    metadata: Mapping[str, Any] | None = None,
    *,
    artifact_root: StoragePath | None = None,
    candidates: int = 1,
    tracker: Tracker | None = None,
    context: RunContext | None = None,
) -> dict:
    """Pick the best of the ``candidates`` fitted (:func:`best_candidate`), re-score its saved
    model, register it as a new version, promote it if it passes the gate.

    With a ``tracker``, the run is first recorded in MLflow and the model registered there
    (see :mod:`adclick.tracking`); the model directory is written only once that succeeded,
    and the ``champion`` alias moves together with ``current.json``. A failed MLflow call
    (:class:`TrackingError`) leaves the model directory as it was.

    The model file is read once: the bytes scored are the bytes stored, and scoring the
    reloaded file proves the stored artifact works, not just the object in memory. It is only
    unpickled when it resolves inside ``artifact_root`` (default: ``workdir``). Below
    ``min_accuracy`` the version is kept (for inspection) but not promoted, and
    :class:`QualityGateError` is raised. Returns ``{"version", "model_path", "promoted",
    "metrics", "rows", "data_hash", "candidate", "candidates"}``: ``candidates`` lists every
    candidate's ``{"index", "params", "metrics"}``, ``candidate`` is the index chosen; and
    ``mlflow`` (see :class:`TrackedModel`) when tracked.
    """
    workdir = storage.location(workdir)
    records = fitted_candidates(workdir, candidates)
    chosen = best_candidate(records)["index"]
    model_file = candidate_dir(workdir, chosen) / MODEL
    model_bytes = _trusted_model_file(model_file, artifact_root or workdir).read_bytes()
    fitted = joblib.load(io.BytesIO(model_bytes))
    holdout = read_frame(workdir / TEST)
    metrics = model.evaluate(fitted, holdout)
    passed = passes_gate(metrics, min_accuracy)
    dataset = read_record(workdir, DATASET_RECORD)
    split = read_record(workdir, SPLIT_RECORD)
    full_metadata = {
        "source": dataset.get("source"),
        "data_hash": dataset.get("data_hash"),
        "rows": dataset.get("rows"),
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
        "candidate": chosen,
        "candidates": records,
    }
    tracked = None
    if tracker is not None:
        from adclick.tracking import RunContext

        context = context or RunContext(run_id)
        tracked = _track(tracker, context, workdir, fitted, holdout, metrics, min_accuracy, records)
        full_metadata["mlflow"] = tracked.as_dict()
    registered = ModelRegistry(model_dir).register(
        model_bytes,
        metrics,
        full_metadata,
        promote=passed,
        promotion=(lambda: tracker.champion(tracked)) if tracked else None,
    )
    result = {
        **registered,
        "rows": dataset.get("rows"),
        "data_hash": dataset.get("data_hash"),
        "candidate": chosen,
        "candidates": records,
    }
    if tracked is not None:
        result["mlflow"] = tracked.as_dict()
    if not passed:
        raise QualityGateError(
            f"model {result['version']}: accuracy {metrics['accuracy']:.4f} is below "
            f"min_accuracy {min_accuracy:.4f}; kept as a rejected version, the current "
            f"model in {model_dir} is unchanged",
            result,
        )
    return write_record(workdir, REGISTERED_RECORD, result)


def _track(
    tracker: Tracker,
    context: RunContext,
    workdir: StoragePath,
    fitted: Any,
    holdout: pd.DataFrame,
    metrics: Mapping[str, Any],
    min_accuracy: float,
    candidates: Sequence[Mapping[str, Any]],
) -> Any:
    """Record the run in MLflow and register the model there (the alias does not move yet)."""
    from adclick import tracking

    dataset = read_record(workdir, DATASET_RECORD)
    split = read_record(workdir, SPLIT_RECORD)
    hyperparameters = tracking.model_params(fitted)
    return tracker.record(
        context=context,
        fitted=fitted,
        holdout=holdout,
        metrics=metrics,
        params={
            **hyperparameters,
            "test_size": split.get("test_size"),
            "random_state": split.get("random_state"),
            "min_accuracy": min_accuracy,
            "train_rows": split.get("train_rows"),
            "test_rows": split.get("test_rows"),
            "data_path": dataset.get("source"),
        },
        dataset=tracking.dataset_ref(
            dataset.get("source") or workdir / CLEAN,
            dataset.get("data_hash") or "",
            read_frame(workdir / CLEAN),
        ),
        candidates=candidates,
        passed=passes_gate(metrics, min_accuracy),
    )


def _trusted_model_file(named: StoragePath, root: StoragePath) -> StoragePath:
    """A run's model file, refused unless it really lies inside ``root``: unpickling runs code."""
    root = storage.location(root)
    if not storage.is_local(named):
        if not storage.within(named, root):
            raise ArtifactError(f"{named} is outside the artifacts root {root}; not loading it")
        return named
    resolved = named.resolve()
    trusted = root.resolve()
    if not resolved.is_relative_to(trusted):
        raise ArtifactError(
            f"{named} resolves to {resolved}, outside the artifacts root {trusted}; not loading it"
        )
    return resolved


def run(
    data_path: StoragePath,
    model_dir: StoragePath,
    workdir: StoragePath,
    *,
    min_accuracy: float = defaults.MIN_ACCURACY,
    test_size: float = defaults.TEST_SIZE,
    random_state: int = defaults.RANDOM_STATE,
    run_id: str,
    min_rows: int = DEFAULT_MIN_ROWS,
    max_bytes: int | None = None,
    candidates: Sequence[Mapping[str, Any]] = tuple(grid_rules.DEFAULT_GRID),
    tracker: Tracker | None = None,
) -> dict:
    """All steps in order, in this process: what the DAG does, without Airflow (the
    ``candidates`` one after the other, where the DAG fits them as parallel tasks).

    With a ``tracker`` the run and the model are recorded in MLflow, as the DAG does.

    Returns a summary with ``accuracy``, ``version``, ``promoted``, ``model_path`` and
    ``metrics``. A :class:`QualityGateError` carries the same summary in ``result``.
    """
    grid = grid_rules.check_candidates(list(candidates))
    loaded = ingest_csv(data_path, workdir, min_rows=min_rows, max_bytes=max_bytes)
    select_features(workdir)
    split = split_holdout(workdir, test_size=test_size, random_state=random_state)
    for index, candidate in enumerate(grid):
        fit_and_score(workdir, random_state=random_state, candidate=candidate, index=index)
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
        result = register_model(
            workdir, model_dir, min_accuracy, run_id, candidates=len(grid), tracker=tracker
        )
    except QualityGateError as exc:
        exc.result = _summary(exc.result, context)
        raise
    return _summary(result, context)


# Through an open file, so one call serves a local directory and an object store alike.
def write_frame(frame: pd.DataFrame, path: StoragePath) -> None:
    with path.open("wb") as out:
        frame.to_parquet(out, index=False)


def read_frame(path: StoragePath, columns: list[str] | None = None) -> pd.DataFrame:
    with path.open("rb") as handle:
        return pd.read_parquet(handle, columns=columns)


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
