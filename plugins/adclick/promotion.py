"""Challenger against champion: the current model scored on this run's hold-out.

A model that passes the absolute gate replaces the champion only if it is at least as good
on the gate's metric, on the same rows, plus ``min_improvement`` in the metric's direction.
A champion that cannot be scored (its features differ, its file is gone or does not load)
leaves the absolute gate to decide, and the result says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from adclick import model, modelfile, storage
from adclick.contract import ModelSpec
from adclick.errors import AdclickError
from adclick.integrity import ModelIntegrityError
from adclick.modelfile import UntrustedModelError
from adclick.registry import CURRENT_FILE, ModelRegistry
from adclick_contract import PROMOTION_CHAMPION_UNSCORABLE as CHAMPION_UNSCORABLE
from adclick_contract import PROMOTION_KEPT_CHAMPION as KEPT_CHAMPION
from adclick_contract import PROMOTION_NO_CHAMPION as NO_CHAMPION
from adclick_contract import PROMOTION_PROMOTED as PROMOTED

__all__ = ["CHAMPION_UNSCORABLE", "KEPT_CHAMPION", "NO_CHAMPION", "PROMOTED"]

# What a champion must share with the challenger for its score on the same rows to count.
_COMPARABLE = ("task", "target", "features", "labels")


def compare(
    model_dir: storage.StoragePath,
    spec: ModelSpec,
    gate: Mapping[str, Any],
    holdout: pd.DataFrame,
    challenger: Mapping[str, Any],
    min_improvement: float = 0.0,
) -> dict[str, Any]:
    """The promotion decision for a challenger with hold-out ``challenger`` metrics that
    passed ``gate``: ``{"decision", "reason", "metric", "min_improvement", "challenger_score",
    "champion_score", "champion_version", "champion_mlflow_version"}``.

    ``decision`` is :data:`PROMOTED`, :data:`KEPT_CHAMPION`, :data:`NO_CHAMPION` or
    :data:`CHAMPION_UNSCORABLE`; only :data:`KEPT_CHAMPION` keeps the challenger from
    becoming current.
    """
    metric = gate["metric"]
    decision: dict[str, Any] = {
        "metric": metric,
        "min_improvement": float(min_improvement),
        "challenger_score": challenger.get(metric),
        "champion_score": None,
        "champion_version": None,
        "champion_mlflow_version": None,
    }
    registry = ModelRegistry(model_dir)
    try:
        champion = registry.current()
    except AdclickError as exc:
        return {**decision, **_unscorable(f"the current model cannot be read: {exc}")}
    if champion is None:
        return {**decision, "decision": NO_CHAMPION, "reason": "no current model to compare with"}
    metadata = champion.get("metadata") or {}
    decision["champion_version"] = champion["version"]
    decision["champion_mlflow_version"] = (metadata.get("mlflow") or {}).get("model_version")
    described = spec.describe()
    for key in _COMPARABLE:
        if metadata.get(key) != described[key]:
            return {
                **decision,
                **_unscorable(
                    f"champion {champion['version']} has {key} {metadata.get(key)!r}, "
                    f"this model {described[key]!r}"
                ),
            }
    try:
        data = storage.location(champion["path"]).read_bytes()
    except OSError as exc:
        return {
            **decision,
            **_unscorable(f"champion {champion['version']} cannot be scored: file gone: {exc}"),
        }
    try:
        fitted = modelfile.load(
            data, champion.get("sha256"), champion["path"], f"in {CURRENT_FILE}"
        )
        score = model.evaluate(spec, fitted, holdout).get(metric)
    # A champion whose bytes changed, or a file naming a type nobody trusts, is an attack, not
    # a model to compare with: refused loudly.
    except (ModelIntegrityError, UntrustedModelError):
        raise
    except Exception as exc:  # a missing file, a pickle from other libraries, a refusing model
        return {
            **decision,
            **_unscorable(
                f"champion {champion['version']} cannot be scored: {type(exc).__name__}: {exc}"
            ),
        }
    if score is None:
        return {
            **decision,
            **_unscorable(
                f"champion {champion['version']}: {metric} is undefined on this hold-out"
            ),
        }
    decision["champion_score"] = score
    return {**decision, **_verdict(gate, decision["challenger_score"], score, min_improvement)}


def _verdict(
    gate: Mapping[str, Any], challenger: float, champion: float, min_improvement: float
) -> dict[str, str]:
    higher_is_better = "min" in gate
    needed = champion + min_improvement if higher_is_better else champion - min_improvement
    wins = challenger >= needed if higher_is_better else challenger <= needed
    relation = ">=" if higher_is_better else "<="
    margin = f" {'+' if higher_is_better else '-'} {min_improvement:g}" if min_improvement else ""
    reason = (
        f"{gate['metric']} {challenger:.4f} {relation if wins else 'not ' + relation} "
        f"champion's {champion:.4f}{margin} on the same hold-out"
    )
    return {"decision": PROMOTED if wins else KEPT_CHAMPION, "reason": reason}


def _unscorable(why: str) -> dict[str, str]:
    return {
        "decision": CHAMPION_UNSCORABLE,
        "reason": f"{why}; the absolute gate alone decides",
    }


def promotes(decision: Mapping[str, Any]) -> bool:
    """Whether a challenger that passed the gate becomes current."""
    return decision["decision"] != KEPT_CHAMPION


def event_extra(result: Mapping[str, Any]) -> dict[str, Any]:
    """What a promotion's asset event says: the new champion's version (and MLflow's), the
    gate's metric and its score on the hold-out, and the run."""
    metric = result["gate"]["metric"]
    return {
        "model": result.get("model"),
        "version": result["version"],
        "mlflow_version": (result.get("mlflow") or {}).get("model_version"),
        "metric": metric,
        "score": result["metrics"].get(metric),
        "decision": (result.get("promotion") or {}).get("decision"),
    }
