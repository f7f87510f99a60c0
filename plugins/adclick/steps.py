"""The training pipeline as file-based steps over one run's working directory.

Each step reads the files and records earlier steps left in ``workdir`` (see
:mod:`adclick.workdir`), writes its own, and returns its own small JSON-able result, which it
also leaves as its record. Nothing else passes between steps, so each can run in a separate
process (one Airflow task each) or retry alone.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pandas as pd
import sklearn

from adclick import (
    approval,
    contract,
    defaults,
    drift,
    integrity,
    model,
    modelfile,
    promotion,
    storage,
)
from adclick import candidates as grid_rules
from adclick.contract import ContractError, ModelSpec
from adclick.dataset import check_frame, read_dataset
from adclick.errors import ArtifactError, DataValidationError, QualityGateError
from adclick.registry import REFERENCE_FILE, ModelRegistry
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

FILE_SHA256 = "file_sha256"  # a candidate's result: the SHA-256 of the model file it saved


def ingest_csv(
    data_path: StoragePath,
    workdir: StoragePath,
    spec: ModelSpec,
    *,
    min_rows: int = defaults.MIN_ROWS,
    root: StoragePath | None = None,
    max_bytes: int | None = None,
) -> dict:
    """Validate the CSV for the model ``spec`` and keep it as ``raw.parquet``, dtypes as read.

    ``root`` and ``max_bytes`` bound what may be opened (see :func:`read_dataset`). Returns
    ``{"path", "rows", "data_hash", "source", "model"}``; ``data_hash`` is the CSV's SHA-256,
    ``source`` the CSV relative to ``root`` when given (what mails and pages show).
    """
    dataset = read_dataset(data_path, spec, min_rows=min_rows, root=root, max_bytes=max_bytes)
    out = storage.location(workdir) / RAW
    write_frame(dataset.frame, out)
    return write_record(
        workdir,
        DATASET_RECORD,
        {
            "path": str(out),
            "rows": dataset.rows,
            "data_hash": dataset.sha256,
            # What mails and pages show: relative to the data root, never a server path.
            "source": storage.relative_name(dataset.source, root) if root else str(dataset.source),
            "model": spec.name,
            "model_sha256": spec.sha256,
        },
    )


def preprocess(workdir: StoragePath, spec: ModelSpec) -> dict:
    """The module's ``data_preprocessing`` (if any), then the model's data checks
    (:func:`adclick.dataset.check_frame`, rows named by position); keeps the features and
    the target, dtypes as they are, as ``clean.parquet``."""
    workdir = storage.location(workdir)
    source = read_record(workdir, DATASET_RECORD).get("source", workdir / RAW)
    if spec.data_preprocessing is None:
        frame = read_frame(workdir / RAW, columns=list(spec.required))
    else:
        frame = read_frame(workdir / RAW)
        try:
            frame = spec.data_preprocessing(frame)
        except Exception as exc:  # the team's code
            raise ContractError(
                f"{spec.display}: data_preprocessing fails on {source}: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(frame, pd.DataFrame):
            raise ContractError(
                f"{spec.display}: data_preprocessing returned {type(frame).__name__}, "
                "not a DataFrame"
            )
        check_frame(spec, frame.reset_index(drop=True), source)
        frame = frame[list(spec.required)].reset_index(drop=True)
    out = workdir / CLEAN
    write_frame(frame, out)
    return write_record(
        workdir,
        FEATURES_RECORD,
        {
            "path": str(out),
            "rows": len(frame),
            "features": list(spec.features),
            "target": spec.target,
        },
    )


def split_holdout(
    workdir: StoragePath,
    spec: ModelSpec,
    test_size: float = defaults.TEST_SIZE,
    random_state: int = defaults.RANDOM_STATE,
) -> dict:
    """Split into ``train.parquet`` and the hold-out ``test.parquet`` (see
    :func:`adclick.model.split`)."""
    workdir = storage.location(workdir)
    frame = read_frame(workdir / CLEAN)
    try:
        train, test = model.split(spec, frame, test_size=test_size, random_state=random_state)
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
    spec: ModelSpec,
    random_state: int = defaults.RANDOM_STATE,
    candidate: Mapping[str, Any] | None = None,
    index: int = 0,
) -> dict:
    """Fit candidate ``index`` of the grid (see :mod:`adclick.candidates`) on
    ``train.parquet``, save its model in its own directory, score it on the hold-out.

    Returns ``{"index", "params", "metrics", "file_sha256"}``; ``params`` are the module's
    ``HYPERPARAMETERS`` with the candidate's values over them, ``file_sha256`` the saved
    file's SHA-256, which :func:`register_model` checks before it loads the file.
    """
    workdir = storage.location(workdir)
    chosen = dict(candidate or {})
    fitted = model.fit(
        spec, read_frame(workdir / TRAIN), random_state, chosen, name=f"candidates[{index}]"
    )
    own = candidate_dir(workdir, index)
    own.mkdir(parents=True, exist_ok=True)
    model_bytes, file_format = modelfile.dumps(fitted)
    (own / MODEL).write_bytes(model_bytes)
    metrics = model.evaluate(spec, fitted, read_frame(workdir / TEST))
    params = grid_rules.effective_hyperparameters(spec, chosen)
    return write_record(
        own,
        METRICS_RECORD,
        {
            "index": index,
            "params": params,
            "metrics": metrics,
            FILE_SHA256: integrity.sha256(model_bytes),
            "model_format": file_format,
        },
    )


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


def best_candidate(
    records: Sequence[Mapping[str, Any]], gate: Mapping[str, Any]
) -> Mapping[str, Any]:
    """The best on the gate's metric in its direction; of equal ones the lowest index, so a
    rerun picks the same."""
    return min(records, key=lambda r: (contract.ranking_key(gate, r["metrics"]), r["index"]))


def gate_record(gate: Mapping[str, Any], passed: bool) -> dict[str, Any]:
    """``quality_gate`` as results and ``metadata.json`` hold it: the gate and its verdict
    (and ``min_accuracy``, the shorthand of an accuracy gate)."""
    return {**gate, **accuracy_shorthand(gate), "passed": passed}


def accuracy_shorthand(gate: Mapping[str, Any]) -> dict[str, float]:
    """``{"min_accuracy": X}`` for a gate ``accuracy >= X``, as results always said it."""
    return (
        {"min_accuracy": gate["min"]}
        if gate == {"metric": "accuracy", "min": gate.get("min")}
        else {}
    )


def register_model(
    workdir: StoragePath,
    model_dir: StoragePath,
    spec: ModelSpec,
    gate: Mapping[str, Any],
    run_id: str,
    metadata: Mapping[str, Any] | None = None,
    *,
    artifact_root: StoragePath | None = None,
    candidates: int = 1,
    tracker: Tracker | None = None,
    context: RunContext | None = None,
    candidate_hashes: Mapping[int, str] | None = None,
    min_improvement: float = 0.0,
    require_approval: bool = False,
    approval_timeout_hours: float = approval.DEFAULT_TIMEOUT_HOURS,
) -> dict:
    """Pick the best of the ``candidates`` fitted (:func:`best_candidate`), re-score its saved
    model, register it as a new version, promote it if it passes the ``gate`` and beats the
    current champion on the same hold-out by ``min_improvement`` (:mod:`adclick.promotion`).

    ``model_dir`` is the model's own registry folder (:func:`adclick.contract.registry_dir`).
    With a ``tracker``, the run is first recorded in MLflow and the model registered there
    (see :mod:`adclick.tracking`); the model directory is written only once that succeeded,
    and the ``champion`` alias moves together with ``current.json``. A failed MLflow call
    (:class:`TrackingError`) leaves the model directory as it was.

    The model file is read once: the bytes scored are the bytes stored, and scoring the
    reloaded file proves the stored artifact works, not just the object in memory. It is only
    unpickled when it resolves inside ``artifact_root`` (default: ``workdir``) and its SHA-256
    is the one its ``build_model`` returned: ``candidate_hashes`` (by index; the DAG passes
    them from the tasks' results, so whoever can write the artifacts store cannot swap a
    file between the two tasks), else the candidates' records. Below the
    gate the version is kept (for inspection) but not promoted, and
    :class:`QualityGateError` is raised. Each version keeps a sample of its training rows'
    features (:func:`adclick.drift.reference_sample`), what drift reports compare with. A
    challenger that passes but loses to the champion is registered, not promoted, and the
    run succeeds. Returns ``{"version", "model_path",
    "promoted", "metrics", "rows", "data_hash", "candidate", "candidates"}`` and what
    :meth:`ModelSpec.describe` says of the model, with ``gate`` and ``quality_gate``:
    ``candidates`` lists every candidate's ``{"index", "params", "metrics"}``, ``candidate``
    is the index chosen; ``promotion`` (see :func:`adclick.promotion.compare`) when the
    gate passed; and ``mlflow`` (see :class:`TrackedModel`) when tracked.

    With ``require_approval``, a model that would be promoted is registered but not promoted:
    its ``approval`` is :func:`adclick.approval.pending` until :func:`settle_approval`.
    """
    workdir = storage.location(workdir)
    gate = dict(gate)
    records = fitted_candidates(workdir, candidates)
    chosen = best_candidate(records, gate)["index"]
    model_file = candidate_dir(workdir, chosen) / MODEL
    model_bytes = _trusted_model_file(model_file, artifact_root or workdir).read_bytes()
    expected = (
        records[chosen].get(FILE_SHA256)
        if candidate_hashes is None
        else candidate_hashes.get(chosen)
    )
    fitted = modelfile.load(model_bytes, expected, model_file, "as build_model saved it")
    holdout = read_frame(workdir / TEST)
    metrics = model.evaluate(spec, fitted, holdout)
    passed = contract.passes(gate, metrics)
    decision = (
        promotion.compare(model_dir, spec, gate, holdout, metrics, min_improvement)
        if passed
        else None
    )
    promote = decision is not None and promotion.promotes(decision)
    waiting = approval.pending(approval_timeout_hours) if promote and require_approval else None
    dataset = read_record(workdir, DATASET_RECORD)
    split = read_record(workdir, SPLIT_RECORD)
    described = spec.describe()
    full_metadata = {
        "model_format": modelfile.format_of(model_bytes),
        "source": dataset.get("source"),
        "data_hash": dataset.get("data_hash"),
        "rows": dataset.get("rows"),
        "train_rows": split.get("train_rows"),
        "test_rows": split.get("test_rows"),
        "test_size": split.get("test_size"),
        "random_state": split.get("random_state"),
        **{k: v for k, v in (metadata or {}).items() if v is not None},
        "run_id": run_id,
        **described,
        "libraries": library_versions(),
        "gate": gate,
        "quality_gate": gate_record(gate, passed),
        "candidate": chosen,
        "candidates": records,
        **({"promotion": decision} if decision else {}),
        **({"approval": waiting} if waiting else {}),
    }
    tracked = None
    if tracker is not None:
        from adclick.tracking import RunContext

        context = context or RunContext(run_id)
        tracked = _track(
            tracker,
            context,
            workdir,
            model_dir,
            spec,
            fitted,
            holdout,
            metrics,
            gate,
            records,
            decision,
        )
        full_metadata["mlflow"] = tracked.as_dict()
        if waiting:
            from adclick.tracking import approval_tags

            tracker.tag(tracked, approval_tags(waiting))
    train = read_frame(workdir / TRAIN, columns=list(spec.features))
    registered = ModelRegistry(model_dir).register(
        model_bytes,
        metrics,
        full_metadata,
        promote=promote and not waiting,
        promotion=functools.partial(tracker.champion, tracked)
        if tracker is not None and tracked
        else None,
        extra_files={REFERENCE_FILE: drift.reference_sample(train, spec.features)},
    )
    result = {
        **registered,
        **{k: described[k] for k in ("model", "task", "labels", "class_names")},
        "gate": gate,
        "quality_gate": gate_record(gate, passed),
        "rows": dataset.get("rows"),
        "data_hash": dataset.get("data_hash"),
        "model_sha256": spec.sha256,
        "candidate": chosen,
        "candidates": records,
        **({"promotion": decision} if decision else {}),
        **({"approval": waiting} if waiting else {}),
    }
    if tracked is not None:
        result["mlflow"] = tracked.as_dict()
    if not passed:
        value = metrics.get(gate["metric"])
        shown = "undefined" if value is None else f"{value:.4f}"
        raise QualityGateError(
            f"model {spec.name} {result['version']}: {gate['metric']} {shown} does not meet "
            f"the gate {contract.describe_gate(gate)}; kept as a rejected version, the "
            f"current model in {model_dir} is unchanged",
            result,
        )
    return write_record(workdir, REGISTERED_RECORD, result)


def settle_approval(
    workdir: StoragePath,
    model_dir: StoragePath,
    *,
    approved: bool,
    by: str | None,
    at: str | None,
    tracker: Tracker | None = None,
) -> dict:
    """Apply a person's answer to the model :func:`register_model` left waiting in
    ``workdir``: approved, it becomes current (and MLflow's ``champion``, together); rejected
    (``by`` someone) or timed out (``by`` nobody), the champion stays. The answer is added to
    the version's ``metadata.json``, tagged on the MLflow run and version, and returned in
    the result as ``approval`` with ``promoted``.

    The result is read from ``workdir``, never from what a task was handed. A result that
    waits for nobody (no approval required, or settled already) is returned as it is, so a
    retried task does nothing twice.
    """
    from adclick.tracking import TrackedModel, approval_tags

    workdir = storage.location(workdir)
    result = read_record(workdir, REGISTERED_RECORD)
    if not approval.awaits(result):
        return result
    settled = approval.answer(result["approval"], approved, by, at)
    registry = ModelRegistry(model_dir)
    tracked = TrackedModel(**result["mlflow"]) if result.get("mlflow") else None
    if approved:
        registry.promote(
            result["version"],
            promotion=functools.partial(tracker.champion, tracked)
            if tracker is not None and tracked is not None
            else None,
        )
    registry.annotate(result["version"], {"approval": settled})
    if tracker is not None and tracked is not None:
        tracker.tag(tracked, approval_tags(settled))
    return write_record(
        workdir, REGISTERED_RECORD, {**result, "promoted": approved, "approval": settled}
    )


def _track(
    tracker: Tracker,
    context: RunContext,
    workdir: StoragePath,
    model_dir: StoragePath,
    spec: ModelSpec,
    fitted: Any,
    holdout: pd.DataFrame,
    metrics: Mapping[str, Any],
    gate: Mapping[str, Any],
    candidates: Sequence[Mapping[str, Any]],
    decision: Mapping[str, Any] | None,
) -> Any:
    """Record the run in MLflow and register the model there (the alias does not move yet)."""
    from adclick import tracking

    dataset = read_record(workdir, DATASET_RECORD)
    split = read_record(workdir, SPLIT_RECORD)
    hyperparameters = tracking.model_params(fitted)
    bound = "min" if "min" in gate else "max"
    return tracker.record(
        context=context,
        spec=spec,
        fitted=fitted,
        holdout=holdout,
        metrics=metrics,
        params={
            **hyperparameters,
            "test_size": split.get("test_size"),
            "random_state": split.get("random_state"),
            "gate_metric": gate["metric"],
            f"gate_{bound}": gate[bound],
            **accuracy_shorthand(gate),
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
        passed=contract.passes(gate, metrics),
        workdir=workdir,
        registry_dir=model_dir,
        promotion=decision,
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
    spec: ModelSpec,
    *,
    gate: Mapping[str, Any] | None = None,
    test_size: float = defaults.TEST_SIZE,
    random_state: int = defaults.RANDOM_STATE,
    run_id: str,
    min_rows: int = defaults.MIN_ROWS,
    max_bytes: int | None = None,
    candidates: Sequence[Mapping[str, Any]] = tuple(grid_rules.DEFAULT_GRID),
    tracker: Tracker | None = None,
    min_improvement: float = 0.0,
) -> dict:
    """All steps in order, in this process: what the DAG does, without Airflow (the
    ``candidates`` one after the other, where the DAG fits them as parallel tasks).

    ``model_dir`` is the model's own registry folder; ``gate`` defaults to the module's.
    With a ``tracker`` the run and the model are recorded in MLflow, as the DAG does.

    Returns a summary with the gate's metric, ``version``, ``promoted``, ``model_path``,
    ``metrics`` and ``promotion`` (the comparison with the champion of ``model_dir``).
    A :class:`QualityGateError` carries the same summary in ``result``.
    """
    gate = contract.check_gate(gate or spec.gate, spec)
    grid = grid_rules.check_candidates(list(candidates))
    grid_rules.check_against(spec, grid, random_state)
    loaded = ingest_csv(data_path, workdir, spec, min_rows=min_rows, max_bytes=max_bytes)
    preprocess(workdir, spec)
    split = split_holdout(workdir, spec, test_size=test_size, random_state=random_state)
    hashes = {
        index: fit_and_score(
            workdir, spec, random_state=random_state, candidate=candidate, index=index
        )[FILE_SHA256]
        for index, candidate in enumerate(grid)
    }
    context = {
        "run_id": run_id,
        "source": loaded["source"],
        "rows": loaded["rows"],
        "data_hash": loaded["data_hash"],
        "train_rows": split["train_rows"],
        "test_rows": split["test_rows"],
        **accuracy_shorthand(gate),
    }
    try:
        result = register_model(
            workdir,
            model_dir,
            spec,
            gate,
            run_id,
            candidates=len(grid),
            tracker=tracker,
            candidate_hashes=hashes,
            min_improvement=min_improvement,
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
    metric = result["gate"]["metric"]
    return {metric: result["metrics"].get(metric), **result, **context}


def library_versions() -> dict[str, str]:
    """Versions a stored model depends on: model files only load reliably under the same."""
    import skops

    return {
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
        "skops": skops.__version__,
    }
