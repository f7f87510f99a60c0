"""``check-model``: is a model module ready for a CSV? In seconds, before a first run.

Imports the module and checks the contract, reads the CSV with the pipeline's own checks, runs
``data_preprocessing`` and the data checks, builds the default candidate, then fits it on a
small sample and predicts a few raw rows, as the registered model will be asked to.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from adclick import candidates, contract, model, steps
from adclick.storage import StoragePath
from adclick.workdir import CLEAN

SAMPLE_ROWS = 200  # enough for every class of a small problem, fast for any estimator
PREDICTED_ROWS = 5


def check_model(module: Path | str, data: StoragePath) -> dict[str, Any]:
    """What was checked, or the first problem as an :class:`~adclick.errors.AdclickError`."""
    spec = contract.load_module(module)
    candidates.check_against(spec, candidates.DEFAULT_GRID, 0)
    with tempfile.TemporaryDirectory(prefix="adclick-check-") as folder:
        workdir = Path(folder)
        loaded = steps.ingest_csv(data, workdir, spec, min_rows=1)
        prepared = steps.preprocess(workdir, spec)
        frame = steps.read_frame(workdir / CLEAN)
    sample = _sample(spec, frame)
    fitted = model.fit(spec, sample, candidate={}, name="the default candidate")
    raw = frame[list(spec.features)].head(PREDICTED_ROWS)
    predicted = [_plain(value) for value in fitted.predict(raw)]
    if spec.labels is not None and not set(predicted) <= set(spec.labels):
        raise contract.ContractError(
            f"{spec.display}: the model predicts {predicted!r}, not values of LABELS"
        )
    return {
        "model": spec.name,
        "module": spec.display,
        "model_sha256": spec.sha256,
        "task": spec.task,
        "labels": list(spec.labels) if spec.labels is not None else None,
        "gate": dict(spec.gate),
        "dag_id": spec.dag_id,
        "rows": loaded["rows"],
        "rows_after_preprocessing": prepared["rows"],
        "fitted_rows": len(sample),
        "predicted": predicted,
        "ready": True,
    }


def _sample(spec: contract.ModelSpec, frame: Any) -> Any:
    """At most :data:`SAMPLE_ROWS` rows, every class in it when there are classes."""
    if len(frame) <= SAMPLE_ROWS:
        return frame
    if spec.labels is None:
        return frame.sample(SAMPLE_ROWS, random_state=0)
    return frame.groupby(spec.target).sample(frac=SAMPLE_ROWS / len(frame), random_state=0)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
