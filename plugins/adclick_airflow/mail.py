"""The pipeline's e-mails (subject, HTML and plain text) from Jinja templates.

The result's metric tables, per-class table, confusion grid and gate line come from the
macros the Flask monitor's pages use too (:mod:`result_views`); the mails' own layouts are in
``templates/mail/``. Everything interpolated into HTML is escaped: error messages quote file
contents and run ids come from whoever triggered the run. Styles are inline (mail clients
drop style sheets); there is no script and nothing loaded from elsewhere. A failure mail says
why first; every mail links to the run's page on the monitor and in Airflow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment

import result_views
from adclick_contract import APPROVER_USERNAME

SUBJECT_LIMIT = 99  # characters: mail clients cut longer subjects, some refuse them
# An absolute path in a message (a file the check refused): the subject keeps its last part.
_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"]+/)+([^\s/'\"]*)")
RED, GREEN = "#cf222e", "#1a7f37"


@dataclass(frozen=True)
class Links:
    """Where a person reads more about the run: its monitor page, Airflow, the task's log."""

    monitor: str
    airflow: str
    log: str | None = None


@dataclass(frozen=True)
class Mail:
    """One mail's subject and its two bodies, the same content as HTML and as plain text."""

    subject: str
    html: str
    text: str


@cache
def _environment() -> Environment:
    env = result_views.environment("adclick_airflow")
    env.globals["candidate_metrics"] = candidate_metrics
    return env


def _render(template: str, subject: str, **context: Any) -> Mail:
    env = _environment()
    return Mail(
        subject=short_subject(subject),
        html=env.get_template(f"mail/{template}.html").render(**context),
        text=env.get_template(f"mail/{template}.txt").render(**context),
    )


def short_subject(text: str) -> str:
    """One line, server paths reduced to their file name, at most ``SUBJECT_LIMIT`` long."""
    line = " ".join(_PATH.sub(lambda m: m.group(1) or "/", text).split())
    return line if len(line) <= SUBJECT_LIMIT else line[: SUBJECT_LIMIT - 1].rstrip() + "…"


def model_name(dag_id: str, result: dict[str, Any] | None) -> str:
    """The result's ``model``; the DAG for a run that recorded none."""
    name = (result or {}).get("model")
    return name if isinstance(name, str) and name else dag_id


def candidate_metrics(candidates: list[Any]) -> list[str]:
    """The scores the candidates recorded, in the order they first appear."""
    names: dict[str, None] = {}
    for item in candidates:
        scores = item.get("metrics") if isinstance(item, dict) else None
        if isinstance(scores, dict):
            names.update(dict.fromkeys(k for k, v in scores.items() if _is_number(v)))
    return list(names)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _headline(result: dict[str, Any] | None) -> str:
    """The gate's metric and value (the first metric when there is no gate), as ``r2 0.91``."""
    metrics = result_views.metrics_of(result)
    name = result_views.gate_metric(result) or next(
        (k for k in result_views.HEADLINE[result_views.task_of(result)] if k in metrics), None
    )
    if name is None or not _is_number(metrics.get(name)):
        return ""
    return f"{name} {result_views.format_metric(metrics[name])}"


def _model_file(path: object) -> str | None:
    """The model file as the mail shows it: relative to the model root, so nobody reading it
    learns the server's directories."""
    from adclick import storage
    from adclick_airflow.settings import model_dir

    return storage.relative_name(path, model_dir()) if path else None


def run_report(dag_id: str, run_id: str, result: dict[str, Any], links: Links) -> Mail:
    """The report the ``send_email`` task sends after a model was trained and registered."""
    promoted = result.get("promoted")
    headline = _headline(result)
    answered = result_views.approval_line(result.get("approval"))
    compared = result_views.promotion_line(result.get("promotion"))
    subject = (
        f"[{model_name(dag_id, result)}] run {run_id}: {headline + ', ' if headline else ''}"
        f"{'promoted' if promoted else 'not promoted'}"
        f"{f' ({answered})' if answered else ''}"
    )
    facts = [
        ("DAG", dag_id),
        ("Run id", run_id),
        ("Model", result.get("model")),
        ("Task", result_views.task_of(result)),
        ("Model version", result.get("version")),
        ("Promoted to current", "yes" if promoted else "no"),
        *([("Against the champion", compared)] if compared else []),
        *([("Approval", answered)] if answered else []),
        ("Model file", _model_file(result.get("model_path"))),
        ("Training rows", result.get("rows")),
        ("Data SHA-256", result.get("data_hash")),
    ]
    title = f"{model_name(dag_id, result)} model report: {run_id}"
    return _render("run_report", subject, title=title, facts=facts, result=result, links=links)


def approval_request(
    dag_id: str, run_id: str, result: dict[str, Any], links: Links, answer_url: str
) -> Mail:
    """Sent when a model waits for a person: the comparison, and where to answer."""
    decision = result.get("promotion") or {}
    metric = result_views.gate_metric(result)
    facts = [
        ("DAG", dag_id),
        ("Run id", run_id),
        ("Model version", result.get("version")),
        ("Challenger", _headline(result)),
        ("Champion", decision.get("champion_version") or "none yet"),
        (
            "Champion's score",
            f"{metric} {result_views.format_metric(decision['champion_score'])}"
            if decision.get("champion_score") is not None
            else None,
        ),
        ("Comparison", result_views.promotion_line(decision)),
        ("Waiting", result_views.approval_line(result.get("approval"))),
    ]
    return _render(
        "approval_request",
        f"[{model_name(dag_id, result)}] approval needed: run {run_id}, {_headline(result)}",
        title=f"Promote {model_name(dag_id, result)} {result.get('version')}?",
        facts=facts,
        result=result,
        links=links,
        answer_url=answer_url,
        approver=APPROVER_USERNAME,
    )


def run_succeeded(dag_id: str, run_id: str, result: dict[str, Any] | None, links: Links) -> Mail:
    result = result or {}
    headline = _headline(result)
    subject = f"[{model_name(dag_id, result)}] SUCCESS: run {run_id}" + (
        f", {headline}" if headline else ""
    )
    facts = [("DAG", dag_id), ("Run id", run_id), ("Model version", result.get("version"))]
    return _render(
        "run_report",
        subject,
        title=f"Run {run_id} succeeded",
        colour=GREEN,
        facts=facts,
        result=result,
        links=links,
    )


def task_failed(
    dag_id: str, run_id: str, task_id: str, try_number: Any, error: str, links: Links
) -> Mail:
    """Names the failing task and the error, with a link to its log in the Airflow UI."""
    first_line = error.strip().splitlines()[0] if error.strip() else "unknown error"
    facts = [("DAG", dag_id), ("Run id", run_id), ("Task", task_id), ("Try", try_number)]
    return _render(
        "run_failed",
        f"[{dag_id}] FAILED at {task_id}: {first_line}",
        title=f"Task {task_id} failed in run {run_id}",
        colour=RED,
        facts=facts,
        task_id=task_id,
        error=error,
        links=links,
    )


def run_failed(dag_id: str, run_id: str, task_id: str | None, reason: str, links: Links) -> Mail:
    """The run's end: the failing task's own error when it was recorded, else Airflow's reason."""
    facts = [("DAG", dag_id), ("Run id", run_id), ("Failed task", task_id or "-")]
    return _render(
        "run_failed",
        f"[{dag_id}] FAILED: run {run_id}" + (f" at {task_id}" if task_id else ""),
        title=f"Run {run_id} failed",
        colour=RED,
        facts=facts,
        task_id=task_id,
        error=reason,
        links=links,
    )


def flask_down(
    url: str, since: str, error: str, where: str, log_url: str, service: str = "Flask monitor"
) -> Mail:
    """Sent once per outage: the watchdog could not bring the service back."""
    return _render(
        "flask",
        f"{service} DOWN: {url} not answering after a relaunch",
        title=f"The {service} is down and could not be brought back",
        facts=[("Health URL", url), ("Down since", since), ("Last attempt", where)],
        error=error,
        log_url=log_url,
        closing="The watchdog keeps trying; one more mail follows when it answers again.",
    )


def flask_back(url: str, since: str, until: str, service: str = "Flask monitor") -> Mail:
    """Sent once when a service that was reported down answers again."""
    return _render(
        "flask",
        f"{service} back: {url} answering again",
        title=f"The {service} answers again",
        facts=[("Health URL", url), ("Down since", since), ("Answering again", until)],
        error=None,
        log_url=None,
        closing=None,
    )


def flask_flapping(
    url: str, relaunches: int, window_s: float, since: str, service: str = "Flask monitor"
) -> Mail:
    """Sent once per flapping episode: the service keeps dying and being relaunched."""
    return _render(
        "flask",
        f"{service} flapping: {url} relaunched {relaunches} times",
        title=f"The {service} keeps going down",
        facts=[
            ("Health URL", url),
            ("Relaunches", f"{relaunches} within {window_s / 60:g} minutes"),
            ("Flapping since", since),
        ],
        error=None,
        log_url=None,
        closing="Each relaunch now waits longer than the one before. No further mail is sent "
        "until the relaunches slow down and the service flaps again.",
    )


def drift_alert(
    model: str, batch: str, summary: dict[str, Any], report: str, retraining: str, links: Links
) -> Mail:
    """Sent once per drifted batch: the share of drifted columns, which ones, the report."""
    share = f"{summary['share']:.0%}"
    drifted = ", ".join(summary["drifted_columns"])
    facts = [
        ("Model", model),
        ("Model version", summary.get("model_version")),
        ("Batch", batch),
        (
            "Rows compared",
            f"{summary.get('compared_rows')} sampled of {summary.get('rows')}"
            if summary.get("sampled")
            else summary.get("rows"),
        ),
        ("Reference rows", summary.get("reference_rows")),
        ("Report", report),
        ("Retraining", retraining),
    ]
    return _render(
        "drift",
        f"[{model}] DRIFT in {batch}: {share} of the columns ({drifted})",
        title=f"Data drift in batch {batch} of model {model}",
        colour=RED,
        facts=facts,
        summary=summary,
        links=links,
    )
