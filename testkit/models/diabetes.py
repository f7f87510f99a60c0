"""Fixture model: a regression (scikit-learn's diabetes data, unscaled), gated on an error
metric, with its own train/test split."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

TARGET = "progression"
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
TASK = "regression"
METRIC = "rmse"
GATE = {"metric": "rmse", "max": 70.0}
HYPERPARAMETERS: dict[str, Any] = {"alpha": 1.0}


def build_model(random_state: int, **hyperparameters: Any) -> Any:
    return make_pipeline(StandardScaler(), Ridge(random_state=random_state, **hyperparameters))


def separate_data_outputs(
    df: pd.DataFrame, test_size: float, random_state: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = train_test_split(df, test_size=test_size, random_state=random_state)
    return train, test
