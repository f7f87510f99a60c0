"""A training run's result (the shared result format) as people read it, for every model kind.

One set of Jinja macros (``templates/result.html`` and ``templates/result.txt``) draws the
metric tables, the per-class table, the confusion grid and the gate line; the Flask monitor's
pages and the pipeline's mails both import them. This package holds plain Python and
templates only (no Flask, no Airflow), so both images install it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from adclick_contract import (
    APPROVAL_APPROVED,
    APPROVAL_AWAITING,
    APPROVAL_REJECTED,
    APPROVAL_TIMED_OUT,
    PROMOTION_KEPT_CHAMPION,
    PROMOTION_PROMOTED,
)

TASKS = ("binary", "multiclass", "regression")
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "roc_auc": "ROC AUC",
    "f1_macro": "Macro F1",
    "precision_macro": "Macro precision",
    "recall_macro": "Macro recall",
    "r2": "R²",
    "rmse": "RMSE",
    "mae": "MAE",
}
HEADLINE = {
    "binary": ("accuracy", "precision", "recall", "f1", "roc_auc"),
    "multiclass": ("accuracy", "f1_macro", "precision_macro", "recall_macro"),
    "regression": ("r2", "rmse", "mae"),
}
NOT_SCORES = ("confusion_matrix", "per_class", "test_rows")
APPROVAL_WORDS = {
    APPROVAL_AWAITING: "awaiting approval",
    APPROVAL_APPROVED: "approved",
    APPROVAL_REJECTED: "rejected: champion kept",
    APPROVAL_TIMED_OUT: "no answer in time: champion kept",
}

# Mail clients drop style sheets: a mail's tables carry these inline, the monitor's pages
# style the same class names from their style sheet.
CELL = "padding:6px 12px;border:1px solid #d0d7de;text-align:center"
INLINE_STYLES = {
    "table": "border-collapse:collapse;margin:0 0 12px",
    "row-head": "padding:4px 12px 4px 0;text-align:left",
    "row-value": "padding:4px 0",
    "head": CELL,
    "cell": CELL,
    "cell correct": f"{CELL};background:#dafbe1",
    "cell wrong": f"{CELL};background:#ffebe9",
    "count": "display:block;font-size:18px;font-weight:bold",
    "rate": "display:block;font-size:12px;color:#57606a",
    "gate passed": "color:#1a7f37",
    "gate failed": "color:#cf222e",
}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def format_metric(value: object) -> str:
    """Scores with four decimals; errors in the target's own unit keep their magnitude."""
    if not _is_number(value):
        return "-" if value is None else str(value)
    number = float(value)  # type: ignore[arg-type]
    return f"{number:.4f}" if abs(number) < 100 else f"{number:,.1f}"


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name)


def metrics_of(result: Mapping[str, Any] | None) -> dict[str, Any]:
    metrics = (result or {}).get("metrics")
    return metrics if isinstance(metrics, dict) else {}


def task_of(result: Mapping[str, Any] | None) -> str:
    """The result's ``task``; for a result that does not say, what its metrics show."""
    task = (result or {}).get("task")
    if task in TASKS:
        return str(task)
    metrics = metrics_of(result)
    if "r2" in metrics or "rmse" in metrics:
        return "regression"
    matrix = metrics.get("confusion_matrix")
    return "multiclass" if isinstance(matrix, list) and len(matrix) > 2 else "binary"


def class_names(result: Mapping[str, Any] | None, count: int) -> list[str]:
    """Display text per class: the result's ``class_names``, else its ``labels``, else the
    class's position."""
    for key in ("class_names", "labels"):
        names = (result or {}).get(key)
        if isinstance(names, list) and len(names) == count:
            return [str(name) for name in names]
    return [str(i) for i in range(count)]


def metric_rows(result: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) of the task's headline metrics, then any extra metric by its name."""
    metrics = metrics_of(result)
    headline = HEADLINE[task_of(result)]
    names = [k for k in headline if k in metrics]
    names += [
        k for k, v in metrics.items() if k not in headline and k not in NOT_SCORES and _is_number(v)
    ]
    return [(metric_label(k), format_metric(metrics[k])) for k in names]


def per_class_rows(result: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """Precision and recall of each class (multiclass results), in the labels' order."""
    per_class = metrics_of(result).get("per_class")
    if not isinstance(per_class, dict) or not per_class:
        return []
    labels = (result or {}).get("labels")
    keys = [str(label) for label in labels] if isinstance(labels, list) else list(per_class)
    names = dict(zip(keys, class_names(result, len(keys)), strict=True))
    rows = []
    for key in keys:
        scores = per_class.get(key)
        if isinstance(scores, dict):
            rows.append(
                {
                    "name": names[key],
                    "precision": format_metric(scores.get("precision")),
                    "recall": format_metric(scores.get("recall")),
                }
            )
    return rows


def confusion_cells(result: Mapping[str, Any] | None) -> list[list[dict]] | None:
    """The confusion matrix (rows actual, columns predicted) as labelled grid cells: count,
    share of the actual class and whether it was right. None for regression or when it is
    not a square matrix of counts."""
    if task_of(result) == "regression":
        return None
    matrix = metrics_of(result).get("confusion_matrix")
    if not (isinstance(matrix, list) and len(matrix) >= 2):
        return None
    size = len(matrix)
    if not all(isinstance(row, list) and len(row) == size for row in matrix):
        return None
    if not all(_is_count(n) for row in matrix for n in row):
        return None
    names = class_names(result, size)
    grid = []
    for actual, row in enumerate(matrix):
        total = sum(row)
        grid.append(
            [
                {
                    "count": count,
                    "rate": count / total if total else None,
                    "correct": actual == predicted,
                    "actual": names[actual],
                    "predicted": names[predicted],
                }
                for predicted, count in enumerate(row)
            ]
        )
    return grid


def gate_of(result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``{"metric", "bound": "min"|"max", "threshold", "passed"}``; a result that records only
    ``quality_gate.min_accuracy`` is an accuracy gate."""
    result = result or {}
    gate = result.get("gate")
    recorded = result.get("quality_gate")
    if not isinstance(recorded, dict):
        recorded = {}
    if not isinstance(gate, dict):
        gate = {"metric": "accuracy", "min": recorded.get("min_accuracy")} if recorded else {}
    bound = "min" if "min" in gate else "max" if "max" in gate else None
    if not isinstance(gate.get("metric"), str) or bound is None:
        return None
    passed = recorded.get("passed", gate.get("passed"))
    return {
        "metric": gate["metric"],
        "bound": bound,
        "threshold": gate[bound],
        "passed": passed if isinstance(passed, bool) else None,
        "value": metrics_of(result).get(gate["metric"]),
    }


def gate_line(result: Mapping[str, Any] | None) -> str | None:
    """``Gate: rmse <= 12.5 (got 10.3000): passed``; None when the result names no gate."""
    gate = gate_of(result)
    if gate is None:
        return None
    sign = ">=" if gate["bound"] == "min" else "<="
    verdict = {True: ": passed", False: ": not passed", None: ""}[gate["passed"]]
    got = f" (got {format_metric(gate['value'])})" if _is_number(gate["value"]) else ""
    return (
        f"Gate: {metric_label(gate['metric'])} {sign} {_threshold(gate['threshold'])}{got}{verdict}"
    )


def gate_metric(result: Mapping[str, Any] | None) -> str | None:
    gate = gate_of(result)
    return gate["metric"] if gate else None


def approval_line(approval: object) -> str | None:
    """A person's sign-off as one line: ``approved by approver at <time>``, ``awaiting
    approval (up to 24 h)``, ``no answer in time: champion kept (24 h)``; None when nobody
    was asked."""
    if not isinstance(approval, Mapping) or approval.get("state") not in APPROVAL_WORDS:
        return None
    state, by, at = approval["state"], approval.get("by"), approval.get("at")
    words = APPROVAL_WORDS[state]
    timeout = approval.get("timeout_hours")
    limit = f"{timeout:g} h" if _is_number(timeout) else None
    if state == APPROVAL_AWAITING:
        return f"{words}{f' (up to {limit})' if limit else ''}"
    if state == APPROVAL_TIMED_OUT:
        return f"{words}{f' ({limit})' if limit else ''}"
    return f"{words}{f' by {by}' if by else ''}{f' at {at}' if at else ''}"


def promotion_line(decision: object) -> str | None:
    """The challenger against the champion as one line, the winner's score first: ``kept
    champion v7: accuracy 0.9710 against 0.9550`` (the MLflow version, else the registry's);
    when there was nothing to compare with, why. None when there is no decision."""
    if not isinstance(decision, Mapping):
        return None
    kind = decision.get("decision")
    scores = (decision.get("challenger_score"), decision.get("champion_score"))
    if kind not in (PROMOTION_PROMOTED, PROMOTION_KEPT_CHAMPION) or not all(
        _is_number(score) for score in scores
    ):
        reason = decision.get("reason")
        return reason if isinstance(reason, str) and reason else None
    mlflow_version = decision.get("champion_mlflow_version")
    version = f"v{mlflow_version}" if mlflow_version else decision.get("champion_version")
    if kind == PROMOTION_PROMOTED:
        verb = "beat champion"
    else:
        verb, scores = "kept champion", scores[::-1]
    metric = decision.get("metric")
    return f"{verb} {version}: {metric} {scores[0]:.4f} against {scores[1]:.4f}"


def percent(value: object) -> str:
    return f"{100 * value:.1f} %" if _is_number(value) else "-"  # type: ignore[operator]


def style(name: str, inline: bool) -> Markup:
    """`` style="..."`` for a mail (inline); nothing on a page (its style sheet does it)."""
    if not inline or name not in INLINE_STYLES:
        return Markup("")
    return Markup(' style="{}"').format(INLINE_STYLES[name])


def install(env: Environment) -> None:
    """Make the macros' helpers available in ``env`` (the monitor's or the mails')."""
    env.globals.update(
        metric_rows=metric_rows,
        per_class_rows=per_class_rows,
        confusion_cells=confusion_cells,
        gate_line=gate_line,
        gate_of=gate_of,
        approval_line=approval_line,
        task_of=task_of,
        style=style,
    )
    env.filters.update(metric=format_metric, percent=percent, metric_label=metric_label)


def loader() -> PackageLoader:
    return PackageLoader("result_views", "templates")


def environment(*packages: str) -> Environment:
    """A Jinja environment over the templates of ``packages`` and this package's macros:
    HTML autoescaped, text not, an undefined name an error."""
    env = Environment(
        loader=ChoiceLoader([*(PackageLoader(p, "templates") for p in packages), loader()]),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    install(env)
    return env


def _threshold(value: object) -> str:
    return f"{value:g}" if _is_number(value) else str(value)  # as the gate was written
