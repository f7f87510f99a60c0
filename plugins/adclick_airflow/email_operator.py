"""The SMTP provider's ``EmailOperator``, sending each mail as ours are sent: a plain-text part
beside the HTML, and a ``Message-ID`` (:func:`adclick_airflow.notify.mime_message`).

The provider builds an HTML-only message; this operator keeps its fields, templating and
connection, and adds ``text_content``. With ``to`` empty it mails the alert recipients
(``ADCLICK_ALERT_EMAILS``), read when the task runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.smtp.operators.smtp import EmailOperator

from adclick_airflow import mail, notify, settings

if TYPE_CHECKING:
    from airflow.sdk import Context


class TextAndHtmlEmailOperator(EmailOperator):
    """``EmailOperator`` with a templated plain-text part; returns the recipients and subject."""

    template_fields: Sequence[str] = (*EmailOperator.template_fields, "text_content")

    def __init__(self, *, text_content: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text_content = text_content

    def execute(self, context: Context) -> dict[str, Any]:
        to = [self.to] if isinstance(self.to, str) else list(self.to)
        recipients = to or settings.alert_recipients()
        message = mail.Mail(str(self.subject), str(self.html_content), self.text_content)
        notify.send(message, to=recipients, conn_id=self.conn_id)
        return {"to": recipients, "subject": message.subject}


def run_report(result: dict[str, Any], dag_id: str, run_id: str) -> mail.Mail:
    """The run report of a training run (a DAG's ``user_defined_macros``): its templates
    draw ``load_model``'s result, which they pull from XCom."""
    return mail.run_report(dag_id, run_id, result, notify.links(dag_id, run_id))
