"""The grid of candidate models a run fits: each candidate sets some hyperparameters of the
classifier, the others keep their defaults.

No scikit-learn import here: the DAG file reads these at parse time (its param's schema), and
a bad grid is refused before any data is read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from adclick.errors import ConfigError

# The classifier's hyperparameters a candidate may set, and what each is when it does not.
HYPERPARAMETERS: dict[str, Any] = {
    "C": 1.0,
    "l1_ratio": 0.0,
    "class_weight": None,
    "max_iter": 1000,
    "solver": "lbfgs",
}
SOLVERS = ("lbfgs", "liblinear", "newton-cg", "newton-cholesky", "sag", "saga")
CLASS_WEIGHTS = (None, "balanced")
MAX_CANDIDATES = 64  # a grid is a handful of fits, not a search space


def effective_hyperparameters(candidate: Mapping[str, Any]) -> dict[str, Any]:
    """Every hyperparameter of :data:`HYPERPARAMETERS` as a candidate fits with it."""
    return {**HYPERPARAMETERS, **candidate}


def check_candidates(value: object) -> list[dict[str, Any]]:
    """A grid of candidates: a non-empty list of objects, each checked by :func:`check_candidate`.

    Raises :class:`ConfigError` naming the candidate (``candidates[2]``), the key and the value.
    """
    if not isinstance(value, list) or not value:
        raise ConfigError(f"candidates must be a non-empty list of objects, got {value!r}")
    if len(value) > MAX_CANDIDATES:
        raise ConfigError(f"candidates: {len(value)} given, at most {MAX_CANDIDATES} allowed")
    return [check_candidate(item, f"candidates[{index}]") for index, item in enumerate(value)]


def check_candidate(candidate: object, name: str = "candidate") -> dict[str, Any]:
    """One candidate's hyperparameters, refused unless each key is known and its value usable."""
    if not isinstance(candidate, dict):
        raise ConfigError(f"{name} must be an object of hyperparameters, got {candidate!r}")
    unknown = sorted(set(candidate) - set(HYPERPARAMETERS))
    if unknown:
        raise ConfigError(
            f"{name}: unknown key {unknown[0]!r} (value {candidate[unknown[0]]!r}); "
            f"known: {', '.join(HYPERPARAMETERS)}"
        )
    for key, value in candidate.items():
        if not _VALID[key](value):
            raise ConfigError(f"{name}: {key}={value!r} is not allowed: {_RULES[key]}")
    chosen = effective_hyperparameters(candidate)
    if chosen["l1_ratio"] > 0 and not (
        chosen["solver"] == "saga" or (chosen["solver"] == "liblinear" and chosen["l1_ratio"] == 1)
    ):
        raise ConfigError(
            f"{name}: l1_ratio={chosen['l1_ratio']!r} needs solver 'saga' "
            f"('liblinear' for l1_ratio 1), not {chosen['solver']!r}"
        )
    return dict(candidate)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_VALID = {
    "C": lambda v: _number(v) and v > 0,
    "l1_ratio": lambda v: _number(v) and 0 <= v <= 1,
    "class_weight": lambda v: v in CLASS_WEIGHTS,
    "max_iter": lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100_000,
    "solver": lambda v: v in SOLVERS,
}
_RULES = {
    "C": "a number > 0",
    "l1_ratio": "a number from 0 to 1",
    "class_weight": "null or 'balanced'",
    "max_iter": "a whole number from 1 to 100000",
    "solver": f"one of {', '.join(SOLVERS)}",
}


DEFAULT_GRID: list[dict[str, Any]] = [{}]  # one candidate: the classifier's defaults above


def json_schema() -> dict[str, Any]:
    """The grid's shape as JSON Schema (types and known keys), for forms and trigger-time checks;
    :func:`check_candidates` adds the ranges and combinations, naming the offending value."""
    kinds = {"C": "number", "l1_ratio": "number", "max_iter": "integer"}
    properties: dict[str, Any] = {key: {"type": kind} for key, kind in kinds.items()}
    properties["class_weight"] = {"enum": list(CLASS_WEIGHTS)}
    properties["solver"] = {"enum": list(SOLVERS)}
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_CANDIDATES,
        "items": {"type": "object", "properties": properties, "additionalProperties": False},
    }
