"""Fixture models for the generic code (``testkit/models``) and their data: scikit-learn's
bundled datasets exported to CSV the way a team would have them (names as text, a category
column typed by hand, gaps)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

MODELS = Path(__file__).resolve().parent / "models"
NAMES = ("iris", "diabetes", "tumours")
SEED = 7
EMBEDDED = "tumours"  # the fixture model the tests' embedded stack also deploys


def module(name: str) -> Path:
    return MODELS / f"{name}.py"


def export_csv(name: str, folder: Path) -> Path:
    """Write model ``name``'s dataset as ``folder/<name>.csv``."""
    frame = {"iris": _iris, "diabetes": _diabetes, "tumours": _tumours}[name]()
    path = Path(folder) / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def export_all(folder: Path) -> Path:
    """Every fixture model's CSV in ``folder``."""
    for name in NAMES:
        export_csv(name, folder)
    return folder


def install(models_dir: Path, names: tuple[str, ...] = NAMES) -> Path:
    """Copy the fixture modules into a models folder (as a team adds theirs)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(module(name), models_dir / f"{name}.py")
    return models_dir


def _iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.data.copy()
    frame["species"] = bunch.target_names[bunch.target]
    return frame


def _diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True, scaled=False)
    return bunch.data.assign(progression=bunch.target)


def _tumours() -> pd.DataFrame:
    """Diagnosis "M"/"B", a clinic typed by hand (case and spaces vary), about 5 % of the
    numbers and the clinics missing, and two rows without a diagnosis."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    random = np.random.default_rng(SEED)
    numeric = ["mean radius", "mean texture", "mean smoothness", "worst concavity", "worst area"]
    frame = bunch.data[numeric].copy()
    spellings = ["North", "north ", "South", " south", "East", "EAST"]
    frame["clinic"] = random.choice(spellings, size=len(frame))
    for column in [*numeric[:2], "clinic"]:
        gaps = random.random(len(frame)) < 0.05
        frame.loc[gaps, column] = np.nan
    frame["diagnosis"] = np.where(bunch.target == 0, "M", "B")
    frame.loc[[3, 10], "diagnosis"] = np.nan
    return frame
