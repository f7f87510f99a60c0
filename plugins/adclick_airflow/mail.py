"""Subjects and bodies of the pipeline's e-mails, as plain functions of plain values.

Everything interpolated is HTML-escaped: error messages quote file contents and run ids come
from whoever triggered the run.
"""

from __future__ import annotations

from html import escape
from typing import Any

METRIC_LABELS = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "roc_auc": "ROC AUC",
}


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(
        f"<tr><th align='left'>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
        for k, v in pairs
    )


def _page(title: str, sections: list[str]) -> str:
    return (
        "<!doctype html><html><body style='font-family:sans-serif'>"
        f"<h2>{escape(title)}</h2>{''.join(sections)}</body></html>"
    )


def metrics_table(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "<p>No metrics were recorded for this run.</p>"
    pairs = [
        (label, f"{metrics[key]:.4f}") for key, label in METRIC_LABELS.items() if key in metrics
    ]
    if "confusion_matrix" in metrics:
        pairs.append(("Confusion matrix [[tn, fp], [fn, tp]]", metrics["confusion_matrix"]))
    if "test_rows" in metrics:
        pairs.append(("Hold-out rows", metrics["test_rows"]))
    return f"<table cellpadding='4'>{_rows(pairs)}</table>"


def run_report(dag_id: str, run_id: str, result: dict[str, Any]) -> tuple[str, str]:
    """The report the ``send_email`` task sends after a model was trained and registered."""
    metrics = result.get("metrics") or {}
    promoted = result.get("promoted")
    subject = (
        f"[{dag_id}] run {run_id}: accuracy {metrics.get('accuracy', float('nan')):.4f}, "
        f"model {result.get('version')} {'promoted' if promoted else 'not promoted'}"
    )
    details = _rows(
        [
            ("DAG", dag_id),
            ("Run id", run_id),
            ("Model version", result.get("version")),
            ("Promoted to current", "yes" if promoted else "no"),
            ("Model file", result.get("model_path")),
            ("Training rows", result.get("rows")),
            ("Data SHA-256", result.get("data_hash")),
        ]
    )
    return subject, _page(
        f"Ad-click model report: {run_id}",
        [
            f"<table cellpadding='4'>{details}</table>",
            "<h3>Hold-out metrics</h3>",
            metrics_table(metrics),
        ],
    )


def run_succeeded(dag_id: str, run_id: str, result: dict[str, Any] | None) -> tuple[str, str]:
    metrics = (result or {}).get("metrics") or {}
    accuracy = f", accuracy {metrics['accuracy']:.4f}" if "accuracy" in metrics else ""
    subject = f"[{dag_id}] SUCCESS: run {run_id}{accuracy}"
    details = _rows(
        [("DAG", dag_id), ("Run id", run_id), ("Model version", (result or {}).get("version"))]
    )
    return subject, _page(
        f"Run {run_id} succeeded",
        [f"<table cellpadding='4'>{details}</table>", "<h3>Metrics</h3>", metrics_table(metrics)],
    )


def task_failed(
    dag_id: str, run_id: str, task_id: str, try_number: Any, error: str, log_url: str
) -> tuple[str, str]:
    """Names the failing task and the error, with a link to its log in the Airflow UI."""
    first_line = error.strip().splitlines()[0] if error.strip() else "unknown error"
    subject = f"[{dag_id}] FAILED at {task_id}: {first_line[:150]}"
    details = _rows([("DAG", dag_id), ("Run id", run_id), ("Task", task_id), ("Try", try_number)])
    return subject, _page(
        f"Task {task_id} failed in run {run_id}",
        [
            f"<table cellpadding='4'>{details}</table>",
            "<h3>Error</h3>",
            f"<pre style='white-space:pre-wrap'>{escape(error)}</pre>",
            f"<p>Log: <a href='{escape(log_url, quote=True)}'>{escape(log_url)}</a></p>",
        ],
    )


def run_failed(
    dag_id: str, run_id: str, task_id: str | None, reason: str, log_url: str | None
) -> tuple[str, str]:
    subject = f"[{dag_id}] FAILED: run {run_id}" + (f" at {task_id}" if task_id else "")
    details = _rows(
        [("DAG", dag_id), ("Run id", run_id), ("Failed task", task_id or "-"), ("Reason", reason)]
    )
    log = (
        f"<p>Log: <a href='{escape(log_url, quote=True)}'>{escape(log_url)}</a></p>"
        if log_url
        else ""
    )
    return subject, _page(
        f"Run {run_id} failed", [f"<table cellpadding='4'>{details}</table>", log]
    )


def flask_down(url: str, since: str, error: str, where: str, log_url: str) -> tuple[str, str]:
    """Sent once per outage: the monitor could not bring the Flask service back."""
    subject = f"[adclick] Flask monitor DOWN: {url} not answering after a relaunch"
    details = _rows([("Health URL", url), ("Down since", since), ("Last attempt", where)])
    return subject, _page(
        "The Flask monitor is down and could not be brought back",
        [
            f"<table cellpadding='4'>{details}</table>",
            "<h3>Error</h3>",
            f"<pre style='white-space:pre-wrap'>{escape(error)}</pre>",
            f"<p>Log: <a href='{escape(log_url, quote=True)}'>{escape(log_url)}</a></p>",
            "<p>The watchdog keeps trying; one more mail follows when it answers again.</p>",
        ],
    )


def flask_back(url: str, since: str, until: str) -> tuple[str, str]:
    """Sent once when a service that was reported down answers again."""
    subject = f"[adclick] Flask monitor back: {url} answering again"
    details = _rows([("Health URL", url), ("Down since", since), ("Answering again", until)])
    return subject, _page(
        "The Flask monitor answers again", [f"<table cellpadding='4'>{details}</table>"]
    )
