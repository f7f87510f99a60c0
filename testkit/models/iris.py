"""Fixture model: multiclass with text labels (scikit-learn's iris, species by name)."""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import RandomForestClassifier

TARGET = "species"
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
TASK = "multiclass"
LABELS = ["setosa", "versicolor", "virginica"]
METRIC = "f1_macro"
HYPERPARAMETERS: dict[str, Any] = {"n_estimators": 25, "max_depth": 4}


def build_model(random_state: int, **hyperparameters: Any) -> RandomForestClassifier:
    return RandomForestClassifier(random_state=random_state, n_jobs=1, **hyperparameters)
