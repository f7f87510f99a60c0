"""Training results of the three model kinds, in the shared result format, for the tests of
what renders them (mails, the monitor): a multiclass model with text labels, a regression and
a binary classifier, none of them the ad-click model."""

from __future__ import annotations

import copy
from typing import Any

from adclick_contract import PROMOTION_KEPT_CHAMPION

MULTICLASS: dict[str, Any] = {
    "model": "iris",
    "task": "multiclass",
    "labels": ["setosa", "versicolor", "virginica"],
    "class_names": ["Iris setosa", "Iris versicolor", "Iris virginica"],
    "gate": {"metric": "f1_macro", "min": 0.85},
    "quality_gate": {"passed": True},
    "version": "20261206T101500Z-1a2b3c",
    "promoted": True,
    "rows": 150,
    "metrics": {
        "accuracy": 0.9333,
        "f1_macro": 0.9327,
        "precision_macro": 0.9345,
        "recall_macro": 0.9333,
        "per_class": {
            "setosa": {"precision": 1.0, "recall": 1.0},
            "versicolor": {"precision": 0.9, "recall": 0.9},
            "virginica": {"precision": 0.9036, "recall": 0.9},
        },
        "confusion_matrix": [[10, 0, 0], [0, 9, 1], [0, 1, 9]],
        "test_rows": 30,
    },
}

REGRESSION: dict[str, Any] = {
    "model": "diabetes",
    "task": "regression",
    "labels": None,
    "gate": {"metric": "rmse", "max": 60.0},
    "quality_gate": {"passed": True},
    "version": "20261206T102000Z-4d5e6f",
    "promoted": True,
    "rows": 442,
    "metrics": {"r2": 0.4526, "rmse": 53.8534, "mae": 42.7941, "test_rows": 89},
}

BINARY: dict[str, Any] = {
    "model": "cancer",
    "task": "binary",
    "labels": ["B", "M"],
    "class_names": ["benign", "malignant"],
    "gate": {"metric": "accuracy", "min": 0.9},
    "quality_gate": {"passed": False},
    "version": "20261206T102500Z-7a8b9c",
    "promoted": False,
    "rows": 569,
    "metrics": {
        "accuracy": 0.8860,
        "precision": 0.8571,
        "recall": 0.8571,
        "f1": 0.8571,
        "roc_auc": 0.9541,
        "confusion_matrix": [[65, 7], [6, 36]],
        "test_rows": 114,
    },
}

KINDS = {"multiclass": MULTICLASS, "regression": REGRESSION, "binary": BINARY}


def result(kind: str, **changes: Any) -> dict[str, Any]:
    """A fresh copy of the ``kind`` result with top-level keys changed."""
    return {**copy.deepcopy(KINDS[kind]), **changes}


def kept_champion(kind: str, champion_mlflow_version: str = "3") -> dict[str, Any]:
    """The ``kind`` result of a run whose model lost to the champion on the gate's metric:
    registered, not promoted, with the decision (the champion better by a margin)."""
    kept = result(kind, promoted=False)
    metric = kept["gate"]["metric"]
    score = kept["metrics"][metric]
    better = score * 0.9 if "max" in kept["gate"] else score + (1 - score) / 2
    kept["promotion"] = {
        "decision": PROMOTION_KEPT_CHAMPION,
        "metric": metric,
        "challenger_score": score,
        "champion_score": better,
        "champion_version": "20261206T091500Z-0a1b2c",
        "champion_mlflow_version": champion_mlflow_version,
    }
    return kept
