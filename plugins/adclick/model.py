"""Split, fit and score any module's model (:mod:`adclick.contract`), by its task.

The estimator is fitted on the raw feature columns and the target as read from the CSV, so
it predicts the original labels (``"M"``, ``"setosa"``), never internal codes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split

from adclick import defaults
from adclick.candidates import build_estimator
from adclick.contract import ContractError, ModelSpec
from adclick.errors import FitError


def split(
    spec: ModelSpec,
    frame: pd.DataFrame,
    *,
    test_size: float = defaults.TEST_SIZE,
    random_state: int = defaults.RANDOM_STATE,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/hold-out split: the module's ``separate_data_outputs``, else stratified for
    classification (both sides keep the class balance) and shuffled for regression."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1, got {test_size}")
    if spec.separate_data_outputs is not None:
        parts = spec.separate_data_outputs(frame, test_size, random_state)
        if (
            not isinstance(parts, tuple | list)
            or len(parts) != 2
            or not all(isinstance(p, pd.DataFrame) for p in parts)
        ):
            raise ContractError(
                f"{spec.display}: separate_data_outputs must return (train, test) DataFrames"
            )
        return parts[0], parts[1]
    stratify = frame[spec.target] if spec.is_classifier else None
    train, test = train_test_split(
        frame, test_size=test_size, random_state=random_state, stratify=stratify
    )
    return train, test


def fit(
    spec: ModelSpec,
    train: pd.DataFrame,
    random_state: int = defaults.RANDOM_STATE,
    candidate: Mapping[str, Any] | None = None,
    name: str = "candidate",
) -> Any:
    """The candidate's estimator fitted on ``train``; :class:`FitError` if it refuses."""
    estimator = build_estimator(spec, dict(candidate or {}), random_state)
    try:
        return estimator.fit(train[list(spec.features)], train[spec.target])
    except Exception as exc:  # the estimator's own refusal, whatever its type
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise FitError(
            f"{spec.display}: {name} {dict(candidate or {})!r}: fitting "
            f"{type(estimator).__name__} fails: {type(exc).__name__}: {message}"
        ) from exc


def evaluate(spec: ModelSpec, model: Any, test: pd.DataFrame) -> dict[str, Any]:
    """Hold-out metrics by task, as plain floats and ints ready for JSON and XCom, plus the
    module's ``evaluate`` extras by their names."""
    features = test[list(spec.features)]
    truth = test[spec.target].to_numpy()
    predicted = model.predict(features)
    if spec.task == "regression":
        metrics = _regression(truth, predicted)
    elif spec.task == "binary":
        metrics = _binary(spec, model, features, truth, predicted)
    else:
        metrics = _multiclass(spec, truth, predicted)
    metrics["test_rows"] = len(test)
    if spec.evaluate is not None:
        extras = spec.evaluate(model, features, test[spec.target])
        for key, value in dict(extras or {}).items():
            metrics[str(key)] = _number(value)
    return metrics


def _binary(
    spec: ModelSpec, model: Any, features: pd.DataFrame, truth: np.ndarray, predicted: np.ndarray
) -> dict[str, Any]:
    """Accuracy, precision, recall and F1 of the positive class ``labels[1]`` from the
    confusion matrix (one pass), ROC AUC from the scores."""
    labels = list(spec.labels or ())
    matrix = confusion_matrix(truth, predicted, labels=labels)
    (tn, fp), (fn, tp) = matrix.tolist()
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "accuracy": _ratio(tp + tn, len(truth)),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "roc_auc": _roc_auc(model, features, truth, labels[1]),
        "confusion_matrix": matrix.tolist(),
    }


def _multiclass(spec: ModelSpec, truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    labels = list(spec.labels or ())
    matrix = confusion_matrix(truth, predicted, labels=labels)
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    return {
        "accuracy": _ratio(int(np.trace(matrix)), len(truth)),
        "f1_macro": float(np.mean(f1)),
        "precision_macro": float(np.mean(precision)),
        "recall_macro": float(np.mean(recall)),
        "per_class": {
            str(label): {"precision": float(p), "recall": float(r)}
            for label, p, r in zip(labels, precision, recall, strict=True)
        },
        "confusion_matrix": matrix.tolist(),
    }


def _regression(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    return {
        "r2": float(r2_score(truth, predicted)) if len(truth) > 1 else None,
        "rmse": float(math.sqrt(mean_squared_error(truth, predicted))),
        "mae": float(mean_absolute_error(truth, predicted)),
    }


def _ratio(part: float, whole: float) -> float:
    """0.0 where the whole is empty, as scikit-learn's ``zero_division=0`` gives."""
    return float(part / whole) if whole else 0.0


def _roc_auc(model: Any, features: pd.DataFrame, truth: np.ndarray, positive: Any) -> float | None:
    """None when the hold-out holds one class only (the AUC is undefined, not zero) or the
    model gives no scores."""
    if len(np.unique(truth)) < 2 or not hasattr(model, "predict_proba"):
        return None
    scores = model.predict_proba(features)[:, list(model.classes_).index(positive)]
    return float(roc_auc_score(truth == positive, scores))


def positive_scores(spec: ModelSpec, model: Any, features: pd.DataFrame) -> np.ndarray | None:
    """A binary model's score for ``labels[1]``, or None without ``predict_proba``."""
    if spec.task != "binary" or spec.labels is None or not hasattr(model, "predict_proba"):
        return None
    return model.predict_proba(features)[:, list(model.classes_).index(spec.labels[1])]


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
