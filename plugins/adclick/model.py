"""The model: one scikit-learn Pipeline, so the scaling fitted on training data travels with it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from adclick import defaults
from adclick.candidates import HYPERPARAMETERS
from adclick.schema import CLASSES, FEATURES, TARGET


def build_pipeline(
    random_state: int = defaults.RANDOM_STATE, hyperparameters: Mapping[str, Any] | None = None
) -> Pipeline:
    """StandardScaler then LogisticRegression: the features are scaled once, inside the model.

    ``hyperparameters`` are a checked candidate (:mod:`adclick.candidates`); without them it
    is the default model (only the values a candidate sets are passed, so the default
    pickles identically).
    """
    classifier = LogisticRegression(max_iter=HYPERPARAMETERS["max_iter"], random_state=random_state)
    classifier.set_params(**dict(hyperparameters or {}))
    return Pipeline([("scale", StandardScaler()), ("classify", classifier)])


def split(
    frame: pd.DataFrame,
    *,
    test_size: float = defaults.TEST_SIZE,
    random_state: int = defaults.RANDOM_STATE,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/hold-out split, so both keep the dataset's class balance."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1, got {test_size}")
    train, test = train_test_split(
        frame, test_size=test_size, random_state=random_state, stratify=frame[TARGET]
    )
    return train, test


def fit(
    train: pd.DataFrame,
    random_state: int = defaults.RANDOM_STATE,
    hyperparameters: Mapping[str, Any] | None = None,
) -> Pipeline:
    pipeline = build_pipeline(random_state, hyperparameters)
    return pipeline.fit(train[list(FEATURES)], train[TARGET])


def evaluate(model: Pipeline, test: pd.DataFrame) -> dict[str, Any]:
    """Hold-out metrics as plain floats and ints, ready for JSON and XCom.

    Accuracy, precision, recall and F1 come from the confusion matrix (one pass, and what
    scikit-learn's own functions would each recompute), ROC AUC from the scores.
    """
    truth = test[TARGET].to_numpy()
    features = test[list(FEATURES)]
    predicted = model.predict(features)
    scores = model.predict_proba(features)[:, list(model.classes_).index(CLASSES[1])]
    matrix = confusion_matrix(truth, predicted, labels=list(CLASSES))
    (tn, fp), (fn, tp) = matrix.tolist()
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "accuracy": _ratio(tp + tn, len(truth)),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "roc_auc": _roc_auc(truth, scores),
        "confusion_matrix": matrix.tolist(),
        "test_rows": len(test),
    }


def _ratio(part: float, whole: float) -> float:
    """0.0 where the whole is empty, as scikit-learn's ``zero_division=0`` gives."""
    return float(part / whole) if whole else 0.0


def _roc_auc(truth: np.ndarray, scores: np.ndarray) -> float | None:
    """None when the hold-out holds one class only: the AUC is undefined, not zero."""
    return float(roc_auc_score(truth, scores)) if len(np.unique(truth)) > 1 else None
