"""Fixture model: text labels ("M", "B"), a text category and missing values, taken by a
Pipeline with imputers and a one-hot encoder (scikit-learn's breast cancer data, with a
clinic column and gaps as a team's export has them)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

TARGET = "diagnosis"
NUMERIC = ["mean radius", "mean texture", "mean smoothness", "worst concavity", "worst area"]
FEATURES = [*NUMERIC, "clinic"]
TASK = "binary"
LABELS = ["B", "M"]
LABEL_NAMES = {"B": "benign", "M": "malignant"}
ALLOW_MISSING = True  # the imputers below take the gaps
HYPERPARAMETERS: dict[str, Any] = {"C": 1.0}


def data_preprocessing(df: pd.DataFrame) -> pd.DataFrame:
    """As the team's script does: clinic names as one spelling, rows without a diagnosis out."""
    df = df.dropna(subset=[TARGET])
    return df.assign(clinic=df["clinic"].str.strip().str.lower())


def build_model(random_state: int, **hyperparameters: Any) -> Pipeline:
    columns = ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
            (
                "clinic",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                ["clinic"],
            ),
        ]
    )
    classifier = LogisticRegression(random_state=random_state, max_iter=1000, **hyperparameters)
    return Pipeline([("columns", columns), ("classify", classifier)])


def evaluate(model: Pipeline, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    return {"balanced_accuracy": balanced_accuracy_score(y, model.predict(X))}
