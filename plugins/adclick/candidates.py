"""The grid of candidate models a run fits: each candidate sets some hyperparameters, the
others keep the module's defaults (its ``HYPERPARAMETERS``).

A candidate's key is either one of ``build_model``'s keyword arguments (a key of
``HYPERPARAMETERS``) or any parameter the built estimator's ``get_params()`` knows (for a
``Pipeline``, ``step__param``). Which keys and values are allowed comes from the estimator
itself (:func:`check_against`), never from a list kept here.

:func:`check_candidates` (the grid's shape) needs no scikit-learn: the DAG files read it at
parse time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from adclick.errors import ConfigError

if TYPE_CHECKING:
    from adclick.contract import ModelSpec

MAX_CANDIDATES = 64  # a grid is a handful of fits, not a search space
DEFAULT_GRID: list[dict[str, Any]] = [{}]  # one candidate: the module's defaults
_SCALARS = (str, int, float, bool, type(None))


def check_candidates(value: object) -> list[dict[str, Any]]:
    """A grid of candidates: a non-empty list of objects of plain values (numbers, strings,
    booleans, null). Raises :class:`ConfigError` naming the candidate (``candidates[2]``)."""
    if not isinstance(value, list) or not value:
        raise ConfigError(f"candidates must be a non-empty list of objects, got {value!r}")
    if len(value) > MAX_CANDIDATES:
        raise ConfigError(f"candidates: {len(value)} given, at most {MAX_CANDIDATES} allowed")
    for index, candidate in enumerate(value):
        name = f"candidates[{index}]"
        if not isinstance(candidate, dict):
            raise ConfigError(f"{name} must be an object of hyperparameters, got {candidate!r}")
        for key, item in candidate.items():
            if not isinstance(key, str) or not isinstance(item, _SCALARS):
                raise ConfigError(f"{name}: {key}={item!r} is not a plain value")
    return [dict(candidate) for candidate in value]


def effective_hyperparameters(spec: ModelSpec, candidate: Mapping[str, Any]) -> dict[str, Any]:
    """What a candidate fits with: the module's defaults, overridden by the candidate."""
    return {**spec.hyperparameters, **candidate}


def build_estimator(spec: ModelSpec, candidate: Mapping[str, Any], random_state: int) -> Any:
    """The module's unfitted estimator for ``candidate``: ``build_model`` with its keyword
    arguments, then ``set_params`` with the estimator's own parameters."""
    arguments = {k: v for k, v in candidate.items() if k in spec.hyperparameters}
    estimator = spec.build_model(random_state, **{**spec.hyperparameters, **arguments})
    if not hasattr(estimator, "fit") or not hasattr(estimator, "get_params"):
        raise ConfigError(
            f"{spec.display}: build_model returned {type(estimator).__name__}, "
            "not a scikit-learn estimator"
        )
    extra = {k: v for k, v in candidate.items() if k not in spec.hyperparameters}
    if extra:
        estimator.set_params(**extra)
    return estimator


def check_against(
    spec: ModelSpec, grid: list[dict[str, Any]], random_state: int
) -> list[dict[str, Any]]:
    """Refuse a candidate whose key the estimator does not know, or whose value it refuses,
    naming the candidate, the key and the value. Builds each candidate; fits nothing."""
    from sklearn.utils._param_validation import InvalidParameterError

    try:
        known = set(build_estimator(spec, {}, random_state).get_params(deep=True))
    except Exception as exc:  # the team's build_model
        raise ConfigError(
            f"{spec.display}: build_model fails: {type(exc).__name__}: {exc}"
        ) from exc
    for index, candidate in enumerate(grid):
        name = f"candidates[{index}]"
        unknown = sorted(set(candidate) - known - set(spec.hyperparameters))
        if unknown:
            shown = sorted(set(spec.hyperparameters) | {k for k in known if "__" not in k})
            raise ConfigError(
                f"{name}: unknown key {unknown[0]!r} (value {candidate[unknown[0]]!r}) for "
                f"model {spec.name}; known: {', '.join(shown)} (and step__param of a Pipeline)"
            )
        try:
            estimator = build_estimator(spec, candidate, random_state)
            for part in _estimators(estimator):
                part._validate_params()
        except (InvalidParameterError, ValueError, TypeError) as exc:
            key, value = next(iter(candidate.items())) if len(candidate) == 1 else ("", None)
            which = f"{key}={value!r} " if key else ""
            raise ConfigError(f"{name}: {which}is not allowed: {exc}") from None
    return grid


def _estimators(estimator: Any) -> list[Any]:
    """The estimator and every estimator nested in it, each able to check its own params."""
    found = [estimator]
    for value in estimator.get_params(deep=True).values():
        if hasattr(value, "get_params") and hasattr(value, "fit"):
            found.append(value)
    return [part for part in found if hasattr(part, "_validate_params")]


def json_schema() -> dict[str, Any]:
    """The grid's shape as JSON Schema, for forms and trigger-time checks; the estimator's
    own checks (:func:`check_against`) name the offending key or value at ``load_data``."""
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_CANDIDATES,
        "items": {"type": "object"},
    }
