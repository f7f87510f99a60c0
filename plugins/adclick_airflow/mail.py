"""Subjects and bodies of the pipeline's e-mails, as plain functions of plain values.

Everything interpolated is HTML-escaped: error messages quote file contents and run ids come
from whoever triggered the run. Styles are inline (mail clients drop style sheets); there is
no script and nothing loaded from elsewhere. A failure mail says why first; every mail links
to the run's page on the monitor and in Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

METRIC_LABELS = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "roc_auc": "ROC AUC",
}
CLASS_NAMES = ("no click", "click")  # label 0 and 1 of the model's target
CELL = "padding:6px 12px;border:1px solid #d0d7de;text-align:center"
RIGHT, WRONG = "#dafbe1", "#ffebe9"


@dataclass(frozen=True)
class Links:
    """Where a person reads more about the run: its monitor page, Airflow, the task's log."""

    monitor: str
    airflow: str
    log: str | None = None


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(
        f"<tr><th align='left' style='padding:4px 12px 4px 0'>{escape(str(k))}</th>"
        f"<td style='padding:4px 0'>{escape(str(v))}</td></tr>"
        for k, v in pairs
    )


def _table(pairs: list[tuple[str, Any]]) -> str:
    return f"<table cellspacing='0'>{_rows(pairs)}</table>"


def _link(href: str, text: str) -> str:
    return f"<a href='{escape(href, quote=True)}'>{escape(text)}</a>"


def _links(links: Links) -> str:
    items = [_link(links.monitor, "This run on the monitor"), _link(links.airflow, "in Airflow")]
    if links.log:
        items.append(_link(links.log, "the failing task's log"))
    return f"<p>{' · '.join(items)}</p>"


def mlflow_links(result: dict[str, Any] | None) -> str:
    """Links to the model's MLflow run and registered version; nothing when not tracked."""
    tracked = (result or {}).get("mlflow") or {}
    if not tracked:
        return ""
    version = f"model {tracked.get('model_name')} version {tracked.get('model_version')}"
    if tracked.get("passed"):
        version += " (champion)"
    run = f"MLflow run {tracked.get('run_id')}"
    items = [
        _link(tracked["run_url"], run) if tracked.get("run_url") else escape(run),
        _link(tracked["version_url"], version) if tracked.get("version_url") else escape(version),
    ]
    return f"<p>{' · '.join(items)}</p>"


def _page(title: str, sections: list[str], colour: str = "#1d2733") -> str:
    return (
        "<!doctype html><html><body style='font-family:sans-serif;color:#1d2733'>"
        f"<h2 style='color:{colour}'>{escape(title)}</h2>{''.join(sections)}</body></html>"
    )


def metrics_table(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "<p>No metrics were recorded for this run.</p>"
    pairs = [
        (label, f"{metrics[key]:.4f}") for key, label in METRIC_LABELS.items() if key in metrics
    ]
    if "test_rows" in metrics:
        pairs.append(("Hold-out rows", metrics["test_rows"]))
    return _table(pairs) + confusion_grid(metrics.get("confusion_matrix"))


def candidates_table(candidates: Any, chosen: Any) -> str:
    """Every candidate of the run's grid: its hyperparameters and hold-out scores, the one
    chosen (registered) marked; nothing for a run that fitted a single candidate."""
    if not isinstance(candidates, list) or len(candidates) < 2:
        return ""
    keys = list(METRIC_LABELS)
    head = "".join(
        f"<th style='{CELL}'>{escape(t)}</th>"
        for t in ["#", "Hyperparameters", *(METRIC_LABELS[k] for k in keys)]
    )
    rows = ""
    for item in candidates:
        if not isinstance(item, dict):
            continue
        metrics = item.get("metrics") if isinstance(item.get("metrics"), dict) else {}
        params = item.get("params") if isinstance(item.get("params"), dict) else {}
        mark = " (chosen)" if item.get("index") == chosen else ""
        scores = "".join(f"<td style='{CELL}'>{_score(metrics.get(k))}</td>" for k in keys)
        settings = ", ".join(f"{k}={v}" for k, v in params.items())
        rows += (
            f"<tr><td style='{CELL}'>{escape(str(item.get('index')))}{mark}</td>"
            f"<td style='{CELL}'>{escape(settings)}</td>{scores}</tr>"
        )
    return (
        "<h3>Candidates (hold-out scores)</h3>"
        f"<table cellspacing='0' style='border-collapse:collapse'><tr>{head}</tr>{rows}</table>"
    )


def _score(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def confusion_grid(matrix: Any) -> str:
    """``[[tn, fp], [fn, tp]]`` as a labelled 2x2 table: counts and the share of each actual
    class; nothing when it is not a 2x2 matrix of counts."""
    if not (
        isinstance(matrix, list)
        and len(matrix) == 2
        and all(isinstance(row, list) and len(row) == 2 for row in matrix)
        and all(isinstance(n, int) and not isinstance(n, bool) for row in matrix for n in row)
    ):
        return ""
    head = "".join(f"<th style='{CELL}'>predicted {name}</th>" for name in CLASS_NAMES)
    body = ""
    for actual, row in enumerate(matrix):
        total = sum(row) or 1
        cells = "".join(
            f"<td style='{CELL};background:{RIGHT if actual == predicted else WRONG}'>"
            f"<b style='font-size:18px'>{count}</b><br>"
            f"<small>{100 * count / total:.1f} % of actual {CLASS_NAMES[actual]}</small></td>"
            for predicted, count in enumerate(row)
        )
        body += f"<tr><th style='{CELL}'>actual {CLASS_NAMES[actual]}</th>{cells}</tr>"
    return (
        "<h3>Confusion matrix (hold-out rows)</h3>"
        f"<table cellspacing='0' style='border-collapse:collapse'><tr><td></td>{head}</tr>"
        f"{body}</table>"
    )


def reason_box(task_id: str | None, error: str) -> str:
    """The first thing a failure mail shows: which task failed and what it said."""
    where = ""
    if task_id:
        where = f"<p style='margin:0 0 6px'>Task <b>{escape(task_id)}</b> failed:</p>"
    return (
        "<div style='border:1px solid #ff8182;border-left:6px solid #cf222e;"
        "background:#ffebe9;padding:8px 14px;margin-bottom:12px'>"
        f"{where}<pre style='white-space:pre-wrap;margin:0;font-size:13px'>{escape(error)}</pre>"
        "</div>"
    )


def run_report(dag_id: str, run_id: str, result: dict[str, Any], links: Links) -> tuple[str, str]:
    """The report the ``send_email`` task sends after a model was trained and registered."""
    metrics = result.get("metrics") or {}
    promoted = result.get("promoted")
    subject = (
        f"[{dag_id}] run {run_id}: accuracy {metrics.get('accuracy', float('nan')):.4f}, "
        f"model {result.get('version')} {'promoted' if promoted else 'not promoted'}"
    )
    details = _table(
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
            _links(links),
            mlflow_links(result),
            details,
            "<h3>Hold-out metrics</h3>",
            metrics_table(metrics),
            candidates_table(result.get("candidates"), result.get("candidate")),
        ],
    )


def run_succeeded(
    dag_id: str, run_id: str, result: dict[str, Any] | None, links: Links
) -> tuple[str, str]:
    metrics = (result or {}).get("metrics") or {}
    accuracy = f", accuracy {metrics['accuracy']:.4f}" if "accuracy" in metrics else ""
    subject = f"[{dag_id}] SUCCESS: run {run_id}{accuracy}"
    details = _table(
        [("DAG", dag_id), ("Run id", run_id), ("Model version", (result or {}).get("version"))]
    )
    return subject, _page(
        f"Run {run_id} succeeded",
        [
            _links(links),
            mlflow_links(result),
            details,
            "<h3>Metrics</h3>",
            metrics_table(metrics),
            candidates_table((result or {}).get("candidates"), (result or {}).get("candidate")),
        ],
        colour="#1a7f37",
    )


def task_failed(
    dag_id: str, run_id: str, task_id: str, try_number: Any, error: str, links: Links
) -> tuple[str, str]:
    """Names the failing task and the error, with a link to its log in the Airflow UI."""
    first_line = error.strip().splitlines()[0] if error.strip() else "unknown error"
    subject = f"[{dag_id}] FAILED at {task_id}: {first_line[:150]}"
    details = _table([("DAG", dag_id), ("Run id", run_id), ("Task", task_id), ("Try", try_number)])
    return subject, _page(
        f"Task {task_id} failed in run {run_id}",
        [reason_box(task_id, error), _links(links), details],
        colour="#cf222e",
    )


def run_failed(
    dag_id: str, run_id: str, task_id: str | None, reason: str, links: Links
) -> tuple[str, str]:
    """The run's end: the failing task's own error when it was recorded, else Airflow's reason."""
    subject = f"[{dag_id}] FAILED: run {run_id}" + (f" at {task_id}" if task_id else "")
    details = _table([("DAG", dag_id), ("Run id", run_id), ("Failed task", task_id or "-")])
    return subject, _page(
        f"Run {run_id} failed",
        [reason_box(task_id, reason), _links(links), details],
        colour="#cf222e",
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


def flask_flapping(url: str, relaunches: int, window_s: float, since: str) -> tuple[str, str]:
    """Sent once per flapping episode: the service keeps dying and being relaunched."""
    subject = f"[adclick] Flask monitor flapping: {url} relaunched {relaunches} times"
    details = _rows(
        [
            ("Health URL", url),
            ("Relaunches", f"{relaunches} within {window_s / 60:g} minutes"),
            ("Flapping since", since),
        ]
    )
    return subject, _page(
        "The Flask monitor keeps going down",
        [
            f"<table cellpadding='4'>{details}</table>",
            "<p>Each relaunch now waits longer than the one before. No further mail is sent "
            "until the relaunches slow down and the service flaps again.</p>",
        ],
    )
