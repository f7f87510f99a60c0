"""The embedded mail catcher against Mailpit's published API (server/ui/api/v1/swagger.json of
axllent/mailpit): every field of every object it answers with, by name and type, for mail
delivered over real SMTP; and the pages a person reads the mail on."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
import requests

from embedded.mailcatcher import MAIL_CSP, MailCatcher
from embedded.stack import free_port

# Mailpit's definitions, field by field ("Address" and "Attachment" are nested types).
ADDRESS = {"Address": str, "Name": str}
ATTACHMENT = {"ContentID": str, "ContentType": str, "FileName": str, "PartID": str, "Size": int}
MESSAGE_SUMMARY = {
    "Attachments": int,
    "Bcc": [ADDRESS],
    "Cc": [ADDRESS],
    "Created": str,
    "From": ADDRESS,
    "ID": str,
    "MessageID": str,
    "Read": bool,
    "ReplyTo": [ADDRESS],
    "Size": int,
    "Snippet": str,
    "Subject": str,
    "Tags": [str],
    "To": [ADDRESS],
}
MESSAGES_SUMMARY = {
    "messages": [MESSAGE_SUMMARY],
    "messages_count": int,
    "start": int,
    "tags": [str],
    "total": int,
    "unread": int,
}
MESSAGE = {
    "Attachments": [ATTACHMENT],
    "Bcc": [ADDRESS],
    "Cc": [ADDRESS],
    "Date": str,
    "From": ADDRESS,
    "HTML": str,
    "ID": str,
    "Inline": [ATTACHMENT],
    "MessageID": str,
    "ReplyTo": [ADDRESS],
    "ReturnPath": str,
    "Size": int,
    "Subject": str,
    "Tags": [str],
    "Text": str,
    "To": [ADDRESS],
}
RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"


def conforms(value, schema, where: str = "$") -> None:
    """``value`` has exactly the fields of ``schema``, each of its type (JSON numbers that
    Mailpit declares as double may be integers)."""
    if isinstance(schema, dict):
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        assert set(value) == set(schema), f"{where}: fields {sorted(value)} != {sorted(schema)}"
        for key, sub in schema.items():
            conforms(value[key], sub, f"{where}.{key}")
    elif isinstance(schema, list):
        assert isinstance(value, list), f"{where}: {value!r} is not an array"
        for i, item in enumerate(value):
            conforms(item, schema[0], f"{where}[{i}]")
    elif schema is int:
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r}"
    else:
        assert isinstance(value, schema), f"{where}: {value!r} is not {schema.__name__}"


@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    running = MailCatcher(smtp_port=free_port(), http_port=0)
    running.start()
    running.url = f"http://127.0.0.1:{running.http_port}"
    yield running
    running.stop()


def deliver(catcher: MailCatcher, subject: str, html: str | None = None, attach: bool = False):
    mail = EmailMessage()
    mail["From"] = "Airflow <airflow@adclick.local>"
    mail["To"] = "ML team <ml-team@adclick.local>, ops@adclick.local"
    mail["Cc"] = "lead@adclick.local"
    mail["Subject"] = subject
    mail["Message-ID"] = "<" + re.sub(r"\W", "-", subject) + "@adclick.local>"
    mail.set_content(f"Text of {subject}.\n")
    if html is not None:
        mail.add_alternative(html, subtype="html")
    if attach:
        mail.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="rows.csv")
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=10) as smtp:
        smtp.send_message(mail)


def test_list_and_message_follow_mailpit_field_for_field(catcher) -> None:
    deliver(catcher, "first", "<p>first <b>HTML</b></p>", attach=True)
    deliver(catcher, "second")

    listing = requests.get(f"{catcher.url}/api/v1/messages", timeout=5).json()

    conforms(listing, MESSAGES_SUMMARY)
    assert listing["total"] == listing["messages_count"] == 2 and listing["unread"] == 2
    newest, oldest = listing["messages"]
    assert newest["Subject"] == "second" and oldest["Subject"] == "first"
    assert oldest["From"] == {"Name": "Airflow", "Address": "airflow@adclick.local"}
    assert [a["Address"] for a in oldest["To"]] == ["ml-team@adclick.local", "ops@adclick.local"]
    assert oldest["Cc"] == [{"Name": "", "Address": "lead@adclick.local"}]
    assert oldest["Attachments"] == 1 and newest["Attachments"] == 0
    assert oldest["MessageID"] == "first@adclick.local" and oldest["Snippet"] == "Text of first."
    assert re.match(RFC3339, oldest["Created"]) and re.match(RFC3339, newest["Created"])

    message = requests.get(f"{catcher.url}/api/v1/message/{oldest['ID']}", timeout=5).json()

    conforms(message, MESSAGE)
    assert message["Text"] == "Text of first.\n" and "<b>HTML</b>" in message["HTML"]
    assert message["ReturnPath"] == "airflow@adclick.local"
    (attachment,) = message["Attachments"]
    assert attachment["FileName"] == "rows.csv" and attachment["ContentType"] == "text/csv"
    part = requests.get(
        f"{catcher.url}/api/v1/message/{oldest['ID']}/part/{attachment['PartID']}", timeout=5
    )
    assert part.content == b"a,b\n1,2\n" and attachment["Size"] == len(part.content)
    # Opening it marked it read, as in Mailpit.
    assert requests.get(f"{catcher.url}/api/v1/messages", timeout=5).json()["unread"] == 1


def test_latest_headers_raw_and_views(catcher) -> None:
    deliver(catcher, "only", "<html><head></head><body><a href='http://x'>x</a></body></html>")

    latest = requests.get(f"{catcher.url}/api/v1/message/latest", timeout=5).json()
    headers = requests.get(f"{catcher.url}/api/v1/message/latest/headers", timeout=5).json()
    raw = requests.get(f"{catcher.url}/api/v1/message/{latest['ID']}/raw", timeout=5)
    view = requests.get(f"{catcher.url}/view/{latest['ID']}.html", timeout=5)
    text = requests.get(f"{catcher.url}/view/latest.txt", timeout=5)

    assert latest["Subject"] == "only"
    assert list(headers) == sorted(headers) and headers["Subject"] == ["only"]
    assert all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in headers.values())
    assert raw.headers["Content-Type"].startswith("text/plain") and b"Subject: only" in raw.content
    assert view.headers["Content-Security-Policy"] == MAIL_CSP and "sandbox" in MAIL_CSP
    assert "script-src" not in MAIL_CSP and "default-src 'none'" in MAIL_CSP
    assert "<base target='_blank'>" in view.text and "href='http://x'" in view.text
    assert text.text == "Text of only.\n"
    assert requests.get(f"{catcher.url}/api/v1/message/nope", timeout=5).status_code == 404


def test_read_status_paging_and_delete(catcher) -> None:
    for n in range(3):
        deliver(catcher, f"mail {n}")
    url = f"{catcher.url}/api/v1/messages"
    ids = [m["ID"] for m in requests.get(url, timeout=5).json()["messages"]]

    page = requests.get(url, params={"start": 1, "limit": 1}, timeout=5).json()
    assert page["start"] == 1 and [m["ID"] for m in page["messages"]] == ids[1:2]
    assert page["total"] == 3
    assert requests.get(url, params={"limit": "x"}, timeout=5).status_code == 400

    assert requests.put(url, json={"IDs": ids[:1], "Read": True}, timeout=5).text == "ok"
    assert requests.get(url, timeout=5).json()["unread"] == 2
    assert requests.delete(url, json={"IDs": ids[:2]}, timeout=5).text == "ok"
    assert [m["ID"] for m in requests.get(url, timeout=5).json()["messages"]] == ids[2:]
    requests.delete(url, timeout=5).raise_for_status()
    assert requests.get(url, timeout=5).json()["total"] == 0


def test_pages_link_every_message_and_frame_its_html_safely(catcher) -> None:
    deliver(catcher, "<b>escaped</b>", "<p>body</p><script>alert(1)</script>")
    (message,) = requests.get(f"{catcher.url}/api/v1/messages", timeout=5).json()["messages"]

    index = requests.get(f"{catcher.url}/", timeout=5)
    page = requests.get(f"{catcher.url}/view/{message['ID']}", timeout=5)

    assert f"href='/view/{message['ID']}'" in index.text
    assert "&lt;b&gt;escaped&lt;/b&gt;" in index.text and "<b>escaped" not in index.text
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script" not in csp
    assert "<iframe title='HTML part' sandbox='allow-popups" in page.text
    assert "allow-scripts" not in page.text and "allow-same-origin" not in page.text
    assert f"src='/view/{message['ID']}.html'" in page.text
    assert "<pre class='text'>Text of &lt;b&gt;escaped&lt;/b&gt;.\n</pre>" in page.text
    assert "ml-team@adclick.local" in page.text
