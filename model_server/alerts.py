"""The alert mail of a champion that cannot be loaded: plain SMTP, with the stack's mail
catcher or relay as the server (``MODEL_SERVER_SMTP_HOST``/``_PORT``)."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

log = logging.getLogger(__name__)


def champion_rejected(model: str, serving: str | None, reason: str) -> tuple[str, str]:
    """Subject and text of the mail: which model, why, and what is served instead."""
    kept = f"version {serving}" if serving else "no version (there was none before)"
    subject = f"Model server: new champion of {model} not loaded; still serving {kept}"
    text = (
        f"The model server could not load the champion just promoted for model {model}, "
        f"and keeps serving {kept}.\n\n"
        f"Why: {reason}\n\n"
        "The registry's current.json names a model file that cannot be used. Promote a "
        "good version again (train, or point current at one); the server loads it within "
        "seconds.\n"
    )
    return subject, text


def send(config: Mapping[str, Any], subject: str, text: str) -> bool:
    """Send one plain-text mail to ``ALERT_EMAILS``; False (and a log line) when there is no
    SMTP server configured or it cannot be reached: an alert must not stop the service."""
    if not config["SMTP_HOST"]:
        log.warning("no MODEL_SERVER_SMTP_HOST: alert not mailed: %s", subject)
        return False
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config["MAIL_FROM"]
    message["To"] = ", ".join(config["ALERT_EMAILS"])
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=str(config["MAIL_FROM"]).rpartition("@")[2])
    message.set_content(text)
    try:
        with smtplib.SMTP(
            config["SMTP_HOST"], config["SMTP_PORT"], timeout=config["SMTP_TIMEOUT"]
        ) as smtp:
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.error("alert not mailed (%s): %s", exc, subject)
        return False
    return True
