"""The embedded mail catcher against Mailpit's published API (server/ui/api/v1/swagger.json of
axllent/mailpit) and its server's behaviour (server/apiv1, internal/storage/search.go): every
field of every object it answers with, by name and type, for mail delivered over real SMTP;
search, read status and the fallbacks; and the pages a person reads the mail on."""

from __future__ import annotations

import hashlib
import re
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
import requests

from embedded.mailcatcher import MAIL_CSP, MailCatcher
from testkit.ports import free_port

# Mailpit's definitions, field by field ("Address" and "Attachment" are nested types).
ADDRESS = {"Address": str, "Name": str}
CHECKSUMS = {"MD5": str, "SHA1": str, "SHA256": str}
ATTACHMENT = {
    "Checksums": CHECKSUMS,
    "ContentID": str,
    "ContentType": str,
    "FileName": str,
    "PartID": str,
    "Size": int,
}
LIST_UNSUBSCRIBE = {"Errors": str, "Header": str, "HeaderPost": str, "Links": [str]}
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
    "Username": str,
}
MESSAGES_SUMMARY = {
    "messages": [MESSAGE_SUMMARY],
    "messages_count": int,
    "messages_unread": int,
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
    "ListUnsubscribe": LIST_UNSUBSCRIBE,
    "MessageID": str,
    "ReplyTo": [ADDRESS],
    "ReturnPath": str,
    "Size": int,
    "Subject": str,
    "Tags": [str],
    "Text": str,
    "To": [ADDRESS],
    "Username": str,
}
APP_INFORMATION = {
    "Database": str,
    "DatabaseSize": int,
    "LatestVersion": str,
    "Messages": int,
    "RuntimeStats": {
        "Memory": int,
        "MessagesDeleted": int,
        "SMTPAccepted": int,
        "SMTPAcceptedSize": int,
        "SMTPIgnored": int,
        "SMTPRejected": int,
        "Uptime": int,
    },
    "Tags": {},
    "Unread": int,
    "Version": str,
}
RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"


def conforms(value, schema, where: str = "$") -> None:
    """``value`` has exactly the fields of ``schema``, each of its type (JSON numbers that
    Mailpit declares as double may be integers)."""
    if schema == {}:  # a map (additionalProperties): any keys, integer values here
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        for key, item in value.items():
            conforms(item, int, f"{where}.{key}")
    elif isinstance(schema, dict):
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


def running_catcher() -> Iterator[MailCatcher]:
    running = MailCatcher(smtp_port=free_port(), http_port=0)
    running.start()
    running.url = f"http://127.0.0.1:{running.http_port}"
    yield running
    running.stop()


@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    yield from running_catcher()


def deliver(
    catcher: MailCatcher,
    subject: str,
    html: str | None = None,
    attach: bool = False,
    to: str = "ML team <ml-team@adclick.local>, ops@adclick.local",
    headers: dict[str, str] | None = None,
):
    mail = EmailMessage()
    mail["From"] = "Airflow <airflow@adclick.local>"
    mail["To"] = to
    for name, value in (headers or {}).items():
        mail[name] = value
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
    assert listing["total"] == listing["messages_count"] == 2
    assert listing["unread"] == listing["messages_unread"] == 2
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
    assert attachment["Checksums"] == {
        "MD5": hashlib.md5(part.content).hexdigest(),
        "SHA1": hashlib.sha1(part.content).hexdigest(),
        "SHA256": hashlib.sha256(part.content).hexdigest(),
    }
    assert message["Username"] == oldest["Username"] == ""  # no SMTP login
    assert message["ListUnsubscribe"] == {"Header": "", "Links": [], "Errors": "", "HeaderPost": ""}
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


def deliver_many(catcher: MailCatcher, subjects: list[str]) -> None:
    """One SMTP session, one mail per subject (in this order)."""
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=10) as smtp:
        for subject in subjects:
            mail = EmailMessage()
            mail["From"] = "airflow@adclick.local"
            mail["To"] = "ops@adclick.local"
            mail["Subject"] = subject
            mail.set_content(f"Text of {subject}.\n")
            smtp.send_message(mail)


def subjects(listing: dict) -> list[str]:
    return [m["Subject"] for m in listing["messages"]]


def test_a_bad_start_or_limit_falls_back_to_the_default(catcher) -> None:
    """Mailpit's getStartLimit: start must be a whole number above 0 and limit one from 0, or
    the default (0 and 50) is used; limit 0 lists every message, and finds none in a search."""
    deliver_many(catcher, [f"mail {n}" for n in range(52)])
    url = f"{catcher.url}/api/v1/messages"
    search = f"{catcher.url}/api/v1/search"

    for params in (
        {"limit": "x"},
        {"limit": "-5"},
        {"limit": "1.5"},
        {"limit": " 5"},
        {"limit": "9" * 20},  # over 64 bits: not a Go int
        {"start": "-1"},
        {},
    ):
        response = requests.get(url, params={**params}, timeout=5)
        assert response.status_code == 200, (params, response.text)
        page = response.json()
        assert page["start"] == 0 and len(page["messages"]) == 50, params
        assert page["messages"][0]["Subject"] == "mail 51", params
    page = requests.get(url, params={"start": "x", "limit": "2"}, timeout=5).json()
    assert subjects(page) == ["mail 51", "mail 50"] and page["start"] == 0
    page = requests.get(url, params={"start": "+2", "limit": "1"}, timeout=5).json()
    assert subjects(page) == ["mail 49"] and page["start"] == 2
    assert len(requests.get(url, params={"limit": "0"}, timeout=5).json()["messages"]) == 52

    found = requests.get(search, params={"query": "mail", "limit": "zero"}, timeout=5).json()
    assert len(found["messages"]) == 50 and found["messages_count"] == 52
    found = requests.get(search, params={"query": "mail", "limit": "0"}, timeout=5).json()
    assert found["messages"] == [] and found["messages_count"] == 52


def deliver_mixed(catcher: MailCatcher) -> MailCatcher:
    """Five mails to search through, oldest first."""
    deliver(catcher, "Weekly report", "<p>All <b>green</b> this week</p>", to="ops@adclick.local")
    deliver(catcher, "Weekly report failed", attach=True, to="Lead <lead@other.example>")
    deliver(catcher, "Run succeeded", "<p>accuracy 0.97</p>")
    deliver(catcher, "Model promoted", to="ops@adclick.local, lead@other.example")
    deliver(catcher, "Disk almost full")
    return catcher


@pytest.fixture
def mixed(catcher) -> MailCatcher:
    return deliver_mixed(catcher)


@pytest.fixture(scope="module")
def searched() -> Iterator[MailCatcher]:
    """The five mails, for searches that change nothing."""
    for running in running_catcher():
        yield deliver_mixed(running)


SEARCHES = {
    # Mailpit's search language (internal/storage/search.go), matches newest first.
    "report": ["Weekly report failed", "Weekly report"],
    "subject:report": ["Weekly report failed", "Weekly report"],
    "SUBJECT:REPORT": ["Weekly report failed", "Weekly report"],
    '"weekly report failed"': ["Weekly report failed"],
    '"report failed"': ["Weekly report failed"],
    "report -failed": ["Weekly report"],
    "report !failed": ["Weekly report"],
    "to:lead@other.example": ["Model promoted", "Weekly report failed"],
    "-to:lead@other.example": ["Disk almost full", "Run succeeded", "Weekly report"],
    "to:lead": ["Model promoted", "Weekly report failed"],
    "addressed:other.example": ["Model promoted", "Weekly report failed"],
    "cc:lead@adclick.local": [
        "Disk almost full",
        "Model promoted",
        "Run succeeded",
        "Weekly report failed",
        "Weekly report",
    ],
    "from:nobody": [],
    "has:attachment": ["Weekly report failed"],
    "!has:attachments": ["Disk almost full", "Model promoted", "Run succeeded", "Weekly report"],
    "rows.csv": ["Weekly report failed"],  # attachment names are searched
    "green": ["Weekly report"],  # the HTML part's text
    '"this week"': ["Weekly report"],
    "accuracy 0.97": ["Run succeeded"],  # two words: both must match
    "message-id:Model-promoted": ["Model promoted"],
    "tag:any": [],
    "is:tagged": [],
    "larger:100kb": [],
    "smaller:100kb": [
        "Disk almost full",
        "Model promoted",
        "Run succeeded",
        "Weekly report failed",
        "Weekly report",
    ],
    "before:2000-01-01": [],
    "after:2000-01-01 subject:disk": ["Disk almost full"],
    "after:not-a-date subject:disk": ["Disk almost full"],  # an unreadable date is ignored
}


@pytest.mark.parametrize("query", sorted(SEARCHES))
def test_search_finds_what_mailpit_finds(searched, query: str) -> None:
    response = requests.get(f"{searched.url}/api/v1/search", params={"query": query}, timeout=5)

    assert response.status_code == 200, response.text
    found = response.json()
    conforms(found, MESSAGES_SUMMARY)
    assert subjects(found) == SEARCHES[query]
    assert found["messages_count"] == found["messages_unread"] == len(SEARCHES[query])
    assert found["total"] == found["unread"] == 5 and found["start"] == 0


def test_search_counts_unread_and_pages_the_matches(mixed) -> None:
    url = f"{mixed.url}/api/v1/search"
    latest = requests.get(f"{mixed.url}/api/v1/message/latest", timeout=5).json()  # reads it
    assert latest["Subject"] == "Disk almost full"

    everything = requests.get(url, params={"query": "adclick"}, timeout=5).json()
    unread = requests.get(url, params={"query": "is:unread"}, timeout=5).json()
    read = requests.get(url, params={"query": "is:read"}, timeout=5).json()
    page = requests.get(url, params={"query": "adclick", "start": 1, "limit": 2}, timeout=5)

    assert everything["messages_count"] == 5 and everything["messages_unread"] == 4
    assert everything["unread"] == 4 and everything["total"] == 5
    assert subjects(read) == ["Disk almost full"] and read["messages_unread"] == 0
    assert len(unread["messages"]) == unread["messages_count"] == 4
    assert subjects(page.json()) == ["Model promoted", "Run succeeded"]
    assert page.json()["start"] == 1 and page.json()["messages_count"] == 5
    for blank in ({}, {"query": ""}, {"query": "   "}):
        missing = requests.get(url, params=blank, timeout=5)
        assert missing.status_code == 400 and missing.text == "Error: no search query"


def test_delete_by_search_deletes_only_the_matches(mixed) -> None:
    url = f"{mixed.url}/api/v1/search"

    refused = requests.delete(url, timeout=5)
    deleted = requests.delete(url, params={"query": "subject:report"}, timeout=5)

    assert refused.status_code == 400 and refused.text == "Error: no search query"
    assert deleted.status_code == 200 and deleted.text == "ok"
    left = requests.get(f"{mixed.url}/api/v1/messages", timeout=5).json()
    assert subjects(left) == ["Disk almost full", "Model promoted", "Run succeeded"]


def test_read_status_by_search_marks_only_the_matches(mixed) -> None:
    url = f"{mixed.url}/api/v1/messages"

    marked = requests.put(url, json={"Search": "subject:report", "Read": True}, timeout=5)

    assert marked.status_code == 200 and marked.text == "ok"
    read = requests.get(f"{mixed.url}/api/v1/search", params={"query": "is:read"}, timeout=5)
    assert subjects(read.json()) == ["Weekly report failed", "Weekly report"]
    # Go matches JSON field names ignoring case; "Read" absent means false (unread).
    assert requests.put(url, json={"search": "failed"}, timeout=5).text == "ok"
    read = requests.get(f"{mixed.url}/api/v1/search", params={"query": "is:read"}, timeout=5)
    assert subjects(read.json()) == ["Weekly report"]
    assert requests.put(url, json={"Read": True}, timeout=5).text == "ok"  # neither: every one
    assert requests.get(url, timeout=5).json()["unread"] == 0


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        '{"Read": true',
        "[]",
        '{"Read": "yes"}',
        '{"Read": true, "IDs": "{id}"}',
        '{"Read": true, "IDs": ["{id}"], "Search": "report"}',
    ],
    ids=["empty", "text", "truncated", "array", "read-not-bool", "ids-not-list", "ids-and-search"],
)
def test_a_put_mailpit_refuses_answers_400_and_changes_nothing(mixed, body: str) -> None:
    url = f"{mixed.url}/api/v1/messages"
    newest = requests.get(url, timeout=5).json()["messages"][0]["ID"]

    response = requests.put(
        url,
        data=body.replace("{id}", newest),
        headers={"Content-Type": "application/json"},
        timeout=5,
    )

    assert response.status_code == 400, response.text
    assert requests.get(url, timeout=5).json()["unread"] == 5


def test_delete_with_a_body_mailpit_cannot_read_deletes_every_message(mixed) -> None:
    """Mailpit's DeleteMessages: no IDs, or a body it cannot decode, means all of them."""
    url = f"{mixed.url}/api/v1/messages"

    response = requests.delete(url, data=b"not json", timeout=5)

    assert response.status_code == 200 and response.text == "ok"
    assert requests.get(url, timeout=5).json()["total"] == 0


def test_info_follows_mailpit(mixed) -> None:
    listing = requests.get(f"{mixed.url}/api/v1/messages", timeout=5).json()
    requests.delete(
        f"{mixed.url}/api/v1/messages", json={"IDs": [listing["messages"][0]["ID"]]}, timeout=5
    )

    info = requests.get(f"{mixed.url}/api/v1/info", timeout=5).json()

    conforms(info, APP_INFORMATION)
    assert info["Messages"] == info["Unread"] == 4 and info["Tags"] == {}
    stats = info["RuntimeStats"]
    assert stats["SMTPAccepted"] == 5 and stats["MessagesDeleted"] == 1
    assert stats["SMTPAcceptedSize"] == sum(m["Size"] for m in listing["messages"])
    assert info["DatabaseSize"] == sum(m["Size"] for m in listing["messages"][1:])
    assert stats["SMTPRejected"] == 0 and stats["Memory"] > 0


@pytest.mark.parametrize(
    ("header", "links", "error"),
    [
        (
            "<mailto:leave@adclick.local>, <https://adclick.local/leave>",
            ["mailto:leave@adclick.local", "https://adclick.local/leave"],
            "",
        ),
        ("<https://adclick.local/leave> (comment)", ["https://adclick.local/leave"], ""),
        ("<ftp://adclick.local/leave>", [], "should start with either http(s):// or mailto:"),
        ("https://adclick.local/leave", [], "no valid unsubscribe links found"),
        (
            "<https://a.local/1>, <https://a.local/2>",
            ["https://a.local/1"],
            "should only contain one HTTP link",
        ),
        (
            "<https://a.local/1> <mailto:x@a.local>",
            [],
            "<> should be split with a comma and optional spaces",
        ),
    ],
)
def test_list_unsubscribe_is_parsed_as_mailpit_parses_it(
    catcher, header: str, links: list[str], error: str
) -> None:
    deliver(
        catcher,
        "newsletter",
        headers={"List-Unsubscribe": header, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )

    found = requests.get(f"{catcher.url}/api/v1/message/latest", timeout=5).json()

    conforms(found, MESSAGE)
    unsubscribe = found["ListUnsubscribe"]
    assert unsubscribe["Header"] == header and unsubscribe["Links"] == links
    assert error in unsubscribe["Errors"] and bool(unsubscribe["Errors"]) == bool(error)
    assert unsubscribe["HeaderPost"] == "List-Unsubscribe=One-Click"
