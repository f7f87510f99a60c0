"""The files of one run's working directory, named once for the steps and for whoever reads them.

Each step leaves its small JSON result as a record named after the DAG task that runs it; a
later step (or a DAG callback, or the mails) reads a record from here and nowhere else.
"""

from __future__ import annotations

import json

from adclick.storage import StoragePath, location

RAW = "raw.parquet"
CLEAN = "clean.parquet"
TRAIN = "train.parquet"
TEST = "test.parquet"
MODEL = "model.joblib"  # in each candidate's directory, beside its METRICS_RECORD
CANDIDATES_DIR = "candidates"  # candidates/<index>/: one per fitted candidate of the grid

DATASET_RECORD = "load_data.json"  # source, rows, data_hash of the CSV
FEATURES_RECORD = "data_preprocessing.json"
SPLIT_RECORD = "separate_data_outputs.json"  # row counts, test_size, random_state
METRICS_RECORD = "build_model.json"  # index, params, metrics of one candidate
REGISTERED_RECORD = "load_model.json"  # version, model_path, promoted, metrics
MLFLOW_RECORD = "mlflow.json"  # ids MLflow gave this run's experiment, run, model and version


def candidate_dir(workdir: StoragePath, index: int) -> StoragePath:
    """Where candidate ``index`` of the grid (its map index in the DAG) keeps its files."""
    return location(workdir) / CANDIDATES_DIR / str(int(index))


def write_record(workdir: StoragePath, name: str, result: dict) -> dict:
    """Leave ``result`` as ``workdir/name`` and return it."""
    (location(workdir) / name).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def read_record(workdir: StoragePath, name: str) -> dict:
    """A record an earlier step left; empty when that step did not run here."""
    try:
        return json.loads((location(workdir) / name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
