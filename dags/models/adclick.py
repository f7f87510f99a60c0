"""The ad-click model: does a visitor click the ad? Logistic regression on five numeric
columns of the public "Advertising" dataset (``data/advertising.csv``), scaled inside the
model so the scaling fitted on the training rows travels with it.

A model module of the contract in ``docs/bring-your-own-model.md``.
"""

from __future__ import annotations

from typing import Any

TARGET = "Clicked on Ad"
FEATURES = [
    "Daily Time Spent on Site",
    "Age",
    "Area Income",
    "Daily Internet Usage",
    "Male",
]
TASK = "binary"
LABELS = [0, 1]
LABEL_NAMES = {0: "no click", 1: "click"}
# The DAG keeps the id it always had, and with it its runs' history.
DAG_ID = "ad_click_training"
DATA_PATH = "advertising.csv"
HYPERPARAMETERS: dict[str, Any] = {
    "C": 1.0,
    "l1_ratio": 0.0,
    "class_weight": None,
    "max_iter": 1000,
    "solver": "lbfgs",
}


def build_model(random_state: int, **hyperparameters: Any) -> Any:
    """StandardScaler then LogisticRegression. Imported here, not at the top: the DAG files
    read this module when Airflow parses them, and need none of scikit-learn for that."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    classifier = LogisticRegression(random_state=random_state, **hyperparameters)
    return Pipeline([("scale", StandardScaler()), ("classify", classifier)])
