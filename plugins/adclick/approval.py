"""A person's sign-off before a promotion: what the request says and what the answer was.

With approval required, a challenger that would be promoted (see :mod:`adclick.promotion`) is
registered but waits: ``current`` and ``champion`` move only once a person approves. A
rejection, or no answer before the timeout, keeps the champion. The run's result, the
version's ``metadata.json`` and the MLflow run and version record the ``approval``:
``{"state", "by", "at", "timeout_hours"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import result_views
from adclick import contract
from adclick_contract import APPROVAL_APPROVED as APPROVED
from adclick_contract import APPROVAL_AWAITING as AWAITING
from adclick_contract import APPROVAL_REJECTED as REJECTED
from adclick_contract import APPROVAL_TIMED_OUT as TIMED_OUT

__all__ = ["APPROVED", "AWAITING", "REJECTED", "TIMED_OUT"]
DEFAULT_TIMEOUT_HOURS = 24.0


def pending(timeout_hours: float) -> dict[str, Any]:
    """The ``approval`` of a run that waits for a person."""
    return {"state": AWAITING, "by": None, "at": None, "timeout_hours": float(timeout_hours)}


def awaits(result: Mapping[str, Any]) -> bool:
    """Whether ``result`` is a registered model waiting for a person's answer."""
    return (result.get("approval") or {}).get("state") == AWAITING


def answer(approval: Mapping[str, Any], approved: bool, by: str | None, at: str | None) -> dict:
    """The settled ``approval``: approved or rejected by ``by`` at ``at``; a rejection with
    nobody answering is the timeout's."""
    state = APPROVED if approved else REJECTED if by else TIMED_OUT
    return {**approval, "state": state, "by": by, "at": at}


def request(result: Mapping[str, Any], monitor_url: str, mlflow_url: str | None) -> tuple[str, str]:
    """Subject and Markdown body of the request a person answers: the model, the comparison
    with the champion (both scores), the gate, and links to the run's page and to MLflow."""
    model = result.get("model") or "model"
    decision = result.get("promotion") or {}
    metric = (result.get("gate") or {}).get("metric")
    score = (result.get("metrics") or {}).get(metric)
    champion = decision.get("champion_score")
    subject = f"Promote {model} {result.get('version')}?"
    lines = [
        f"**{model}** version `{result.get('version')}` passed the gate and may become the "
        "champion.",
        "",
        f"- Challenger: {metric} **{_score(score)}** on this run's hold-out",
        f"- Champion: {_champion(decision, champion)}",
        f"- Comparison: {result_views.promotion_line(decision) or 'none'}",
        f"- Gate: {contract.describe_gate(result['gate']) if result.get('gate') else 'none'}",
        "",
        f"Approve to make it current; Reject keeps the champion. No answer within "
        f"{(result.get('approval') or {}).get('timeout_hours', DEFAULT_TIMEOUT_HOURS):g} h "
        "keeps it too.",
        "",
        f"- [The run on the monitor]({monitor_url})",
    ]
    if mlflow_url:
        lines.append(f"- [The model version in MLflow]({mlflow_url})")
    return subject, "\n".join(lines)


def _score(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "undefined"


def _champion(decision: Mapping[str, Any], score: object) -> str:
    version = decision.get("champion_version")
    if not version:
        return "none yet"
    mlflow = decision.get("champion_mlflow_version")
    named = f"{version}{f' (MLflow v{mlflow})' if mlflow else ''}"
    return f"{named}, {decision.get('metric')} **{_score(score)}** on the same rows"
