"""Send the pipeline's mails through Airflow's SMTP provider (connection ``smtp_default``).

The callbacks are attached to the DAG and its tasks; they never raise, because a mail that
cannot be sent must not hide the run's real outcome. The failure is logged instead, where it
shows up in the task or dag-processor log.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from adclick.storage import location, relative_name
from adclick.workdir import REGISTERED_RECORD
from adclick_airflow import mail, outage, settings
from adclick_airflow.monitoring import flask_health_url
from flask_launcher.services import FLASK_MONITOR, MODEL_SERVER, Service

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

SMTP_CONN_ID = "smtp_default"
DEFAULT_SENDER = "airflow@localhost"  # when the connection names no from_email
# A subject (under 100 characters) stays on its header line: folded at 78, a subject with a
# long URL moved whole to a continuation line, and some readers show its leading space.
HEADERS_ON_ONE_LINE = policy.SMTP.clone(max_line_length=998)


def send(message: mail.Mail, to: list[str] | None = None, conn_id: str = SMTP_CONN_ID) -> None:
    """Deliver one mail (text and HTML alternatives, its own Message-ID) through the SMTP
    connection ``conn_id``; raises if the SMTP server cannot be reached (callers decide).
    """
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    recipients = to or settings.alert_recipients()
    with SmtpHook(smtp_conn_id=conn_id) as hook:
        envelope = mime_message(message, hook.from_email or DEFAULT_SENDER, recipients)
        # The hook's own send builds an HTML-only message; its logged-in client sends ours.
        client = hook._smtp_client
        if client is None:
            raise ConnectionError("the SMTP hook opened no connection")
        client.send_message(envelope)


def mime_message(message: mail.Mail, sender: str, to: list[str]) -> EmailMessage:
    """``multipart/alternative``: the text part first, the HTML part preferred."""
    envelope = EmailMessage(policy=HEADERS_ON_ONE_LINE)
    envelope["Subject"] = message.subject
    envelope["From"] = sender
    envelope["To"] = ", ".join(to)
    envelope["Date"] = formatdate(localtime=False)
    envelope["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    envelope.set_content(message.text)
    envelope.add_alternative(message.html, subtype="html")
    return envelope


def send_quietly(message: mail.Mail) -> None:
    """:func:`send`, logging instead of raising: a notification must not fail what it reports."""
    try:
        send(message)
    except Exception:
        log.exception("Could not send notification %r", message.subject)


FAILURE_FILE = "failure.json"


def links(dag_id: str, run_id: str, log_url: str | None = None) -> mail.Links:
    """The run's page on the monitor and in the Airflow UI (``[api] base_url``)."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="http://localhost:8080").rstrip("/")
    airflow = f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return mail.Links(settings.monitor_run_url(run_id, dag_id), airflow, log_url)


def task_failed(context: Context) -> None:
    """Per-task failure mail (Airflow 3 replaces ``email_on_failure`` with notifiers like this).

    The error is also written to the run's working directory, where the run's own failure
    mail (sent by the dag-processor, which never sees the exception) reads it.
    """
    ti = context["ti"]
    error = context.get("exception")
    reason = str(error) if error is not None else "unknown error"
    _record_failure(ti.dag_id, ti.run_id, {"task_id": ti.task_id, "message": reason})
    map_index = getattr(ti, "map_index", -1)
    message = mail.task_failed(
        ti.dag_id,
        ti.run_id,
        f"{ti.task_id}[{map_index}]"
        if isinstance(map_index, int) and map_index >= 0
        else ti.task_id,
        ti.try_number,
        f"{type(error).__name__}: {error}" if error is not None else reason,
        links(ti.dag_id, ti.run_id, ti.log_url),
    )
    send_quietly(message)


def _record_failure(dag_id: str, run_id: str, failure: dict[str, str]) -> None:
    try:
        workdir = settings.run_workdir(dag_id, run_id)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / FAILURE_FILE).write_text(json.dumps(failure))
    except OSError:  # the mails still go out; the run's mail then names Airflow's reason
        log.exception("Could not record the failure of %s in %s", failure["task_id"], run_id)


def _recorded(dag_id: str, run_id: str, name: str) -> dict | None:
    """A JSON file a task left in the run's working directory.

    Read from the file rather than XCom: DAG callbacks run in the dag-processor, outside any
    task, where the file is the one source that is always there.
    """
    path = settings.run_workdir(dag_id, run_id) / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("Nothing recorded at %s", path)
        return None


def training_result(dag_id: str, run_id: str) -> dict | None:
    """What ``load_model`` recorded in the run's working directory (version, metrics)."""
    return _recorded(dag_id, run_id, REGISTERED_RECORD)


def notify_success(context: Context) -> None:
    """DAG-level success mail: run id and the metrics of the model it trained."""
    dag_id, run_id = context["dag"].dag_id, context["run_id"]
    result = training_result(dag_id, run_id)
    send_quietly(mail.run_succeeded(dag_id, run_id, result, links(dag_id, run_id)))


def notify_failure(context: Context) -> None:
    """DAG-level failure mail: which task failed and why, first; then the links."""
    dag_id, run_id, ti = context["dag"].dag_id, context["run_id"], context.get("ti")
    failure = _recorded(dag_id, run_id, FAILURE_FILE) or {}
    task_id = failure.get("task_id") or (ti.task_id if ti is not None else None)
    reason = failure.get("message") or str(context.get("reason") or "task failed")
    log_url = ti.log_url if ti is not None and ti.task_id == task_id else None
    send_quietly(mail.run_failed(dag_id, run_id, task_id, reason, links(dag_id, run_id, log_url)))


def drift_alert(
    model: str, dag_id: str, run_id: str, report: dict[str, Any], retraining: bool
) -> dict[str, Any]:
    """Mail that a scored batch drifted (:func:`mail.drift_alert`); raises if it cannot be
    sent, so the task fails and says so. Returns the recipients and the subject."""
    message = mail.drift_alert(
        model,
        location(report["predictions"]).parent.name,
        report,
        relative_name(report["html"], settings.data_dir()),
        "started on the batch (retrain_on_drift)" if retraining else "not asked for",
        links(dag_id, run_id),
    )
    recipients = settings.alert_recipients()
    send(message, recipients)
    return {"to": recipients, "subject": message.subject}


def flask_down(context: Context) -> None:
    """Failure callback of the Flask monitor's relaunch tasks (see :func:`service_down`)."""
    service_down(context, FLASK_MONITOR)


def model_server_down(context: Context) -> None:
    """Failure callback of the model service's relaunch tasks (see :func:`service_down`)."""
    service_down(context, MODEL_SERVER)


def service_down(context: Context, service: Service) -> None:
    """The first failure of an outage of ``service`` mails, the attempts after it do not (see
    :mod:`adclick_airflow.outage`)."""
    ti = context["ti"]
    error = context.get("exception")
    reason = f"{type(error).__name__}: {error}" if error is not None else "unknown error"
    path = settings.flask_outage_file(service)
    record = outage.begin(path, reason)
    if record is None:
        log.info("%s outage already reported (%s)", service.title, path)
        return
    where = f"{ti.dag_id} / {ti.run_id} / {ti.task_id}"
    url = flask_health_url(service)
    try:
        send(mail.flask_down(url, record["since"], reason, where, ti.log_url, service.title))
    except Exception:
        log.exception("Could not send the %s outage mail; the next attempt will", service.title)
        outage.end(path)


def flask_flapping(
    relaunches: int, window_s: float, since: float, service: Service = FLASK_MONITOR
) -> None:
    """A relaunch opened a flapping episode: say so once (see :mod:`relaunches`)."""
    when = datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
    url = flask_health_url(service)
    send_quietly(mail.flask_flapping(url, relaunches, window_s, when, service.title))


def flask_back(service: Service = FLASK_MONITOR) -> None:
    """The service answers: if an outage was reported, close it and say so, once."""
    record = outage.end(settings.flask_outage_file(service))
    if record is None:
        return
    until = datetime.now(UTC).isoformat(timespec="seconds")
    url = flask_health_url(service)
    send_quietly(mail.flask_back(url, record.get("since", "?"), until, service.title))
