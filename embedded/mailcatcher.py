"""A small SMTP catcher with Mailpit's HTTP API and a web page to read what it caught.

Mails sent by Airflow land here instead of anybody's inbox. It is a development inbox: anyone
who can reach its ports (every user of this machine) can read, mark, delete and send mail.
The HTTP side answers these routes of Mailpit's API (v1, its server/ui/api/v1/swagger.json)
with the same fields and the same behaviour (search language, fallbacks, 400s), so tools
written for Mailpit work against it, and the Compose stack's Mailpit can be checked the same way:

    GET    /api/v1/messages?start=&limit=   MessagesSummary, newest first
    PUT    /api/v1/messages                 {"IDs": [...]} or {"Search": q}, "Read": read status
    DELETE /api/v1/messages                 {"IDs": [...]}, or every message without IDs
    GET    /api/v1/search?query=&start=&limit=&tz=   MessagesSummary of the matches
    DELETE /api/v1/search?query=&tz=        delete the matches
    GET    /api/v1/info                     AppInformation
    GET    /api/v1/message/{ID}             Message (marks it read); ID may be ``latest``
    GET    /api/v1/message/{ID}/headers     {header: [values]}, header names sorted
    GET    /api/v1/message/{ID}/raw         the source as received
    GET    /api/v1/message/{ID}/part/{PartID}  one attachment or inline part
    GET    /view/{ID}.html, /view/{ID}.txt  the HTML part (sandboxed) and the text part
    GET    /livez, /readyz

It keeps at most ``max_messages`` mails (the oldest go first, as with Mailpit's
``MP_MAX_MESSAGES``) and refuses a mail over ``max_message_bytes`` with SMTP's 552 (Mailpit's
``MP_MAX_MESSAGE_SIZE``). It answers only requests whose ``Host`` names one of its host names
(400 otherwise), so a web page elsewhere cannot read it through DNS rebinding.

People open ``/``: a list linking to each message's page (``/view/{ID}``), which shows its
headers, its text part and its HTML part in a sandboxed frame that may run no script and
load nothing from anywhere (its own Content-Security-Policy says so too).

Run it with ``python -m embedded.mailcatcher --smtp-port 1025 --http-port 8025``.
"""

from __future__ import annotations

import argparse
import base64
import email
import email.policy
import hashlib
import html
import json
import os
import re
import resource
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from embedded import mailsearch

SNIPPET_CHARS = 250  # Mailpit's MessageSummary.Snippet: "up to 250 characters"
DEFAULT_LIMIT = 50  # Mailpit's default page size of /api/v1/messages and /api/v1/search
VERSION = "mailcatcher"


@dataclass(frozen=True)
class CatcherSettings:
    """What the catcher holds and whom it answers: the defaults live here and only here.

    Mailpit keeps 500 mails of up to 50 MB; the stack's mails are a few kilobytes each, and a
    development inbox has no business holding more than a couple of hundred megabytes.
    """

    max_messages: int = 200
    max_message_bytes: int = 1 << 20
    # Host names the HTTP side answers to (any port); others are refused against DNS rebinding.
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")


# -- the store ------------------------------------------------------------------------------
@dataclass
class Counters:
    """Mailpit's runtime statistics (AppInformation.RuntimeStats)."""

    started: float = field(default_factory=time.monotonic)
    accepted: int = 0
    accepted_bytes: int = 0
    rejected: int = 0
    deleted: int = 0


class MailStore:
    """Thread-safe list of received messages, optionally mirrored to ``.eml`` files.

    At most ``max_messages`` are kept: adding one more drops the oldest, with its file.
    """

    def __init__(
        self, directory: Path | None = None, max_messages: int = CatcherSettings.max_messages
    ) -> None:
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self.directory = directory
        self.max_messages = max_messages
        self.counters = Counters()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def add(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> str:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        message_id = uuid.uuid4().hex
        created = datetime.now(UTC)
        entry = {
            "id": message_id,
            "created": created,
            "from": mail_from,
            "to": list(rcpt_tos),
            "message": message,
            "raw": raw,
            "read": False,
            "file": None,
        }
        entry["search"] = _searchable(entry)
        if self.directory is not None:
            entry["file"] = self.directory / f"{created:%Y%m%dT%H%M%S}-{message_id[:8]}.eml"
            entry["file"].write_bytes(raw)
        with self._lock:
            self._messages.append(entry)
            dropped = self._messages[: -self.max_messages]
            del self._messages[: -self.max_messages]
            self.counters.accepted += 1
            self.counters.accepted_bytes += len(raw)
            self.counters.deleted += len(dropped)
        _forget(dropped)
        return message_id

    def all(self) -> list[dict[str, Any]]:
        """Newest first, as Mailpit lists them."""
        with self._lock:
            return list(reversed(self._messages))

    def matching(self, query: str, timezone: str | None = None) -> list[dict[str, Any]]:
        """Newest first, the messages Mailpit's search ``query`` finds."""
        test = mailsearch.compile_query(query, timezone)
        return [entry for entry in self.all() if test(entry["search"], entry["read"])]

    def get(self, message_id: str) -> dict[str, Any] | None:
        with self._lock:
            if message_id == "latest":
                return self._messages[-1] if self._messages else None
            return next((m for m in self._messages if m["id"] == message_id), None)

    def set_read(self, ids: list[str] | None, read: bool) -> None:
        with self._lock:
            for entry in self._messages:
                if ids is None or entry["id"] in ids:
                    entry["read"] = read

    def delete(self, ids: list[str] | None = None) -> None:
        with self._lock:
            gone = [m for m in self._messages if ids is None or m["id"] in ids]
            self._messages = [m for m in self._messages if ids is not None and m["id"] not in ids]
            self.counters.deleted += len(gone)
        _forget(gone)

    def clear(self) -> None:
        self.delete()

    def size(self) -> int:
        with self._lock:
            return sum(len(m["raw"]) for m in self._messages)


def _forget(entries: list[dict[str, Any]]) -> None:
    """A message dropped from the store leaves the disk too: the files never outgrow the cap."""
    for entry in entries:
        if entry["file"] is not None:
            entry["file"].unlink(missing_ok=True)


# -- Mailpit's JSON shapes (definitions of its swagger.json) --------------------------------
def _time(value: datetime) -> str:
    """RFC 3339 with milliseconds, as Go writes them: 2026-11-24T08:30:01.123Z."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def addresses(message: EmailMessage, header: str) -> list[dict[str, str]]:
    """Mailpit's Address list: ``[{"Name", "Address"}]`` from one header."""
    values = [str(v) for v in message.get_all(header) or []]
    return [{"Name": name, "Address": address} for name, address in getaddresses(values) if address]


def _from(entry: dict[str, Any]) -> dict[str, str]:
    found = addresses(entry["message"], "From")
    return found[0] if found else {"Name": "", "Address": entry["from"]}


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content().replace("\r\n", "\n") if part is not None else ""


def _parts(message: EmailMessage) -> tuple[list[dict], list[dict]]:
    """``(attachments, inline)`` as Mailpit's Attachment objects, with dotted part ids."""
    attachments, inline = [], []
    for part_id, part in _numbered(message):
        if part.is_multipart() or part is message:
            continue
        disposition = part.get_content_disposition()
        content_id = str(part.get("Content-ID", "")).strip("<>")
        if disposition != "attachment" and not (disposition == "inline" and content_id):
            continue
        payload = part.get_payload(decode=True) or b""
        item = {
            "PartID": part_id,
            "FileName": part.get_filename() or "",
            "ContentType": part.get_content_type(),
            "ContentID": content_id,
            "Size": len(payload),
            "Checksums": {
                "MD5": hashlib.md5(payload, usedforsecurity=False).hexdigest(),
                "SHA1": hashlib.sha1(payload, usedforsecurity=False).hexdigest(),
                "SHA256": hashlib.sha256(payload).hexdigest(),
            },
        }
        (attachments if disposition == "attachment" else inline).append(item)
    return attachments, inline


def _numbered(message: EmailMessage, prefix: str = "") -> list[tuple[str, EmailMessage]]:
    found = [(prefix or "0", message)]
    if message.is_multipart():
        for index, part in enumerate(message.iter_parts(), start=1):
            found += _numbered(part, f"{prefix}.{index}" if prefix else str(index))
    return found


def _part(message: EmailMessage, part_id: str) -> EmailMessage | None:
    return next((part for pid, part in _numbered(message) if pid == part_id), None)


def _date(entry: dict[str, Any]) -> str:
    try:
        sent = parsedate_to_datetime(str(entry["message"]["Date"]))
    except (TypeError, ValueError, KeyError):
        sent = None
    return _time(sent if sent is not None and sent.tzinfo else entry["created"])


def _searchable(entry: dict[str, Any]) -> mailsearch.Searchable:
    """What Mailpit's search looks at in this message."""
    message: EmailMessage = entry["message"]
    attachments, inline = _parts(message)
    people = {
        "To": addresses(message, "To"),
        "From": [_from(entry)],
        "Cc": addresses(message, "Cc"),
        "Bcc": addresses(message, "Bcc"),
        "ReplyTo": addresses(message, "Reply-To"),
    }
    headers = ("From", "Subject", "To", "Cc", "Bcc", "Reply-To", "Return-Path")
    return mailsearch.Searchable(
        addresses={name: mailsearch.address_json(found) for name, found in people.items()},
        subject=str(message.get("Subject", "")),
        message_id=str(message.get("Message-ID", "")).strip("<>"),
        text=mailsearch.searchable_text(
            [str(message.get(name, "")) for name in headers],
            _body(message, "html"),
            _body(message, "plain"),
            [a["FileName"] for a in attachments],
        ),
        created=entry["created"],
        size=len(entry["raw"]),
        attachments=len(attachments),
        inline=len(inline),
    )


def list_unsubscribe(message: EmailMessage) -> dict[str, Any]:
    """Mailpit's ListUnsubscribe: the header, its links and what is wrong with them."""
    header = str(message.get("List-Unsubscribe", "") or "")
    if not header:
        return {"Header": "", "Links": [], "Errors": "", "HeaderPost": ""}
    links, errors = _unsubscribe_links(header)
    return {
        "Header": header,
        "Links": links,
        "Errors": errors,
        "HeaderPost": str(message.get("List-Unsubscribe-Post", "") or ""),
    }


def _unsubscribe_links(value: str) -> tuple[list[str], str]:
    """Mailpit's ListUnsubscribeParser: ``<mailto:...>, <https://...>``, at most one of each."""
    value = re.sub(r"\(.*?\)", "", value, flags=re.DOTALL).strip()
    if not re.search(r"<(.*?)>", value):
        return [], f'"{value}" no valid unsubscribe links found'
    if not re.search(r"^<(.*?)>$", value, flags=re.MULTILINE | re.DOTALL):
        return [], f'"{value}" should be enclosed in <>'
    found = re.findall(r"<(.*?)>", value)
    if len(found) > 2:
        return [], f'"{value}" should include a maximum of one email and one HTTP link'
    for joint in re.findall(r">(.*?)<", value, flags=re.DOTALL):
        if not re.fullmatch(r"\s*,\s*", joint):
            return [], f'"{value}" <> should be split with a comma and optional spaces'
    links, errors, seen = [], [], set()
    for link in found:
        kind = (
            "mailto"
            if re.match(r"mailto:[a-zA-Z0-9]", link)
            else "http"
            if re.match(r"(?i)https?://[a-zA-Z0-9]", link)
            else None
        )
        if re.search(r"\s", link):
            errors.append(f'"{link}" should not contain spaces')
        elif kind is None:
            errors.append(f'"{link}" should start with either http(s):// or mailto:')
        elif kind in seen:
            errors.append(
                f'"{link}" should only contain one {"mailto:" if kind == "mailto" else "HTTP link"}'
            )
        else:
            seen.add(kind)
            links.append(link)
    return links, ", ".join(errors)


def summary(entry: dict[str, Any]) -> dict[str, Any]:
    """Mailpit's MessageSummary; all but the read status worked out once per message, as
    tools poll the list."""
    if "summary" not in entry:
        entry["summary"] = _summary(entry)
    return {**entry["summary"], "Read": entry["read"]}


def _summary(entry: dict[str, Any]) -> dict[str, Any]:
    message: EmailMessage = entry["message"]
    attachments, _ = _parts(message)
    text = _body(message, "plain") or re.sub(r"<[^>]+>", " ", _body(message, "html"))
    return {
        "ID": entry["id"],
        "MessageID": str(message.get("Message-ID", "")).strip("<>"),
        "Read": entry["read"],
        "From": _from(entry),
        "To": addresses(message, "To"),
        "Cc": addresses(message, "Cc"),
        "Bcc": addresses(message, "Bcc"),
        "ReplyTo": addresses(message, "Reply-To"),
        "Subject": str(message.get("Subject", "")),
        "Created": _time(entry["created"]),
        "Username": "",  # the catcher's SMTP asks for no login
        "Tags": [],
        "Size": len(entry["raw"]),
        "Attachments": len(attachments),
        "Snippet": " ".join(html.unescape(text).split())[:SNIPPET_CHARS],
    }


def detail(entry: dict[str, Any]) -> dict[str, Any]:
    """Mailpit's Message."""
    message: EmailMessage = entry["message"]
    attachments, inline = _parts(message)
    return {
        "ID": entry["id"],
        "MessageID": str(message.get("Message-ID", "")).strip("<>"),
        "From": _from(entry),
        "To": addresses(message, "To"),
        "Cc": addresses(message, "Cc"),
        "Bcc": addresses(message, "Bcc"),
        "ReplyTo": addresses(message, "Reply-To"),
        "ReturnPath": entry["from"],
        "Subject": str(message.get("Subject", "")),
        "ListUnsubscribe": list_unsubscribe(message),
        "Date": _date(entry),
        "Tags": [],
        "Username": "",
        "Text": _body(message, "plain"),
        "HTML": _body(message, "html"),
        "Size": len(entry["raw"]),
        "Inline": inline,
        "Attachments": attachments,
    }


def listing(
    entries: list[dict[str, Any]],
    start: int,
    page: list[dict[str, Any]],
    everything: list[dict[str, Any]],
) -> dict[str, Any]:
    """Mailpit's MessagesSummary: ``page`` of the ``entries`` asked for (newest first),
    counted against ``everything`` in the mailbox."""
    return {
        "total": len(everything),
        "unread": sum(not e["read"] for e in everything),
        "messages_count": len(entries),
        "messages_unread": sum(not e["read"] for e in entries),
        "start": start,
        "tags": [],
        "messages": [summary(e) for e in page],
    }


def info(store: MailStore) -> dict[str, Any]:
    """Mailpit's AppInformation. The mail is kept in memory: no database path."""
    entries = store.all()
    counters = store.counters
    return {
        "Version": VERSION,
        "LatestVersion": "disabled",  # what Mailpit says with its version check off
        "Database": "",
        "DatabaseSize": store.size(),
        "Messages": len(entries),
        "Unread": sum(not e["read"] for e in entries),
        "Tags": {},
        "RuntimeStats": {
            "Uptime": int(time.monotonic() - counters.started),
            "Memory": _memory(),
            "MessagesDeleted": counters.deleted,
            "SMTPAccepted": counters.accepted,
            "SMTPAcceptedSize": counters.accepted_bytes,
            "SMTPRejected": counters.rejected,
            "SMTPIgnored": 0,  # Mailpit counts duplicate IDs it was told to ignore; none here
        },
    }


def _memory() -> int:
    """Resident bytes now (Linux), else the peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def headers(entry: dict[str, Any]) -> dict[str, list[str]]:
    """Mailpit's MessageHeadersResponse: every header's values, names in sorted order."""
    found: dict[str, list[str]] = {}
    for name, value in entry["message"].items():
        found.setdefault(name, []).append(str(value))
    return dict(sorted(found.items()))


# -- the pages people read ------------------------------------------------------------------
PAGE_CSS = """
:root { color-scheme: light dark; --rule: #d0d7de; --muted: #57606a; --panel: #fff; --bg: #f6f8fa; }
@media (prefers-color-scheme: dark) {
  :root { --rule: #30363d; --muted: #9198a1; --panel: #161b22; --bg: #0d1117; }
}
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 64rem; padding: 1rem 1.5rem;
  background: var(--bg); }
table { border-collapse: collapse; width: 100%; background: var(--panel); }
th, td { text-align: left; padding: .35rem .7rem; border-bottom: 1px solid var(--rule);
  vertical-align: top; }
.unread td { font-weight: 600; }
td.when { white-space: nowrap; }
.muted { color: var(--muted); font-size: .9rem; }
iframe { width: 100%; height: 48rem; border: 1px solid var(--rule); background: #fff; }
pre { white-space: pre-wrap; background: var(--panel); padding: .8rem;
  border: 1px solid var(--rule); }
h2 { font-size: 1.1rem; margin-top: 1.5rem; }
""".strip()
_CSS_HASH = base64.b64encode(hashlib.sha256(PAGE_CSS.encode()).digest()).decode()
# Our own pages: no script at all, the one style block above, frames only from here.
PAGE_CSP = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; frame-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# A mail's HTML: its inline styles and embedded images, nothing else; a sandbox (no script,
# no forms, no same-origin) even when opened on its own. Links open outside it.
MAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "base-uri 'none'; form-action 'none'; sandbox allow-popups allow-popups-to-escape-sandbox"
)
SANDBOX = "allow-popups allow-popups-to-escape-sandbox"


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)} · Mail catcher</title><style>{PAGE_CSS}</style></head>"
        f"<body>{body}</body></html>"
    )


def _names(people: list[dict[str, str]]) -> str:
    return ", ".join(f"{p['Name']} <{p['Address']}>" if p["Name"] else p["Address"] for p in people)


def index_page(entries: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr class='{'read' if e['read'] else 'unread'}' data-id='{e['id']}'>"
        f"<td class='when'>{html.escape(s['Created'][:19].replace('T', ' '))} UTC</td>"
        f"<td>{html.escape(_names([s['From']]))}</td><td>{html.escape(_names(s['To']))}</td>"
        f"<td><a href='/view/{e['id']}'>{html.escape(s['Subject'] or '(no subject)')}</a></td>"
        "</tr>"
        for e in entries
        for s in [summary(e)]
    )
    if not rows:
        rows = "<tr><td colspan='4'>No mail yet.</td></tr>"
    return _page(
        "Caught mail",
        f"<h1>Caught mail</h1><p class='muted'>{len(entries)} message(s), newest first.</p>"
        "<table><tr><th>Received</th><th>From</th><th>To</th><th>Subject</th></tr>"
        f"{rows}</table>",
    )


def message_page(entry: dict[str, Any]) -> str:
    message = detail(entry)
    mid = quote(entry["id"], safe="")
    fields = [
        ("From", _names([message["From"]])),
        ("To", _names(message["To"])),
        ("Cc", _names(message["Cc"])),
        ("Subject", message["Subject"]),
        ("Date", message["Date"]),
        ("Message-ID", message["MessageID"]),
    ]
    rows = "".join(
        f"<tr><th>{name}</th><td>{html.escape(value)}</td></tr>" for name, value in fields if value
    )
    parts = []
    if message["HTML"]:
        parts.append(
            "<h2>HTML part</h2>"
            f"<iframe title='HTML part' sandbox='{SANDBOX}' src='/view/{mid}.html'></iframe>"
        )
    if message["Text"]:
        parts.append(f"<h2>Text part</h2><pre class='text'>{html.escape(message['Text'])}</pre>")
    files = "".join(
        f"<li><a href='/api/v1/message/{mid}/part/{quote(a['PartID'])}'>"
        f"{html.escape(a['FileName'] or a['PartID'])}</a> ({html.escape(a['ContentType'])})</li>"
        for a in message["Attachments"]
    )
    if files:
        parts.append(f"<h2>Attachments</h2><ul>{files}</ul>")
    return _page(
        message["Subject"] or "(no subject)",
        "<p><a href='/'>&larr; all mail</a></p>"
        f"<h1>{html.escape(message['Subject'] or '(no subject)')}</h1>"
        f"<table class='headers'>{rows}</table>"
        f"<p class='muted'><a href='/api/v1/message/{mid}/headers'>all headers</a> · "
        f"<a href='/api/v1/message/{mid}/raw'>source</a></p>" + "".join(parts),
    )


def embeddable(body: str) -> str:
    """The mail's HTML with its links opening outside the frame (Mailpit's ``embed``)."""
    base = "<base target='_blank'>"
    head = re.search(r"<head[^>]*>", body, flags=re.IGNORECASE)
    if head:
        return body[: head.end()] + base + body[head.end() :]
    return base + body


# -- the servers ----------------------------------------------------------------------------
class _SmtpHandler:
    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_DATA(self, server, session, envelope) -> str:
        self.store.add(
            envelope.original_content or envelope.content, envelope.mail_from, envelope.rcpt_tos
        )
        return "250 Message accepted for delivery"


class _CountingSMTP(SMTP):
    """aiosmtpd's SMTP session, counting the mails it refuses as too large (552)."""

    def __init__(self, *args: Any, counters: Counters, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counters = counters

    async def push(self, status: str) -> None:
        if status.startswith("552"):
            self.counters.rejected += 1
        await super().push(status)


class _SmtpController(Controller):
    def __init__(self, store: MailStore, **kwargs: Any) -> None:
        super().__init__(_SmtpHandler(store), **kwargs)
        self.counters = store.counters

    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, counters=self.counters, **self.SMTP_kwargs)


class BadRequest(Exception):
    """A request Mailpit answers with 400 and this text."""


def host_name(header: str) -> str:
    """The host of a ``Host`` header, without port or brackets, lower case."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _make_http_handler(store: MailStore, hosts: frozenset[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "mailcatcher"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests poll a lot
            pass

        def _send(
            self, status: int, body: bytes, content_type: str, csp: str | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Cache-Control", "no-store")
            if csp:
                self.send_header("Content-Security-Policy", csp)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, payload: Any) -> None:
            self._send(200, json.dumps(payload).encode(), "application/json")

        def _text(self, status: int, text: str) -> None:
            self._send(status, text.encode(), "text/plain; charset=utf-8")

        def _html(self, body: str, csp: str = PAGE_CSP) -> None:
            self._send(200, body.encode(), "text/html; charset=utf-8", csp)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _route(self, method: str) -> None:
            if host_name(self.headers.get("Host", "")) not in hosts:
                # Not a name of ours: a page elsewhere reaching us through DNS rebinding.
                return self._text(400, "unknown Host header")
            url = urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            query = parse_qs(url.query)
            try:
                getattr(self, f"_{method}")(path, query)
            except BadRequest as exc:
                self._text(400, str(exc))

        def do_GET(self) -> None:
            self._route("get")

        def do_PUT(self) -> None:
            self._route("put")

        def do_DELETE(self) -> None:
            self._route("delete")

        def _get(self, path: str, query: dict[str, list[str]]) -> None:
            if path in ("/livez", "/readyz"):
                return self._text(200, "ok")
            if path == "/":
                return self._html(index_page(store.all()))
            if path == "/api/v1/info":
                return self._json(info(store))
            if path == "/api/v1/messages":
                start, limit = start_and_limit(query)
                everything = store.all()
                page = everything[start : start + limit] if limit else everything
                return self._json(listing(everything, start, page, everything))
            if path == "/api/v1/search":
                start, limit = start_and_limit(query)
                found = store.matching(search_query(query), _first(query, "tz"))
                page = found[start : start + limit]
                return self._json(listing(found, start, page, store.all()))
            found = re.fullmatch(r"/api/v1/message/([^/]+)(/headers|/raw|/part/([^/]+))?", path)
            if found:
                return self._message(found.group(1), found.group(2) or "", found.group(3))
            found = re.fullmatch(r"/view/([^/]+?)(\.html|\.txt)?", path)
            if found:
                return self._view(found.group(1), found.group(2) or "")
            self._text(404, "not found")

        def _message(self, message_id: str, what: str, part_id: str | None) -> None:
            entry = store.get(message_id)
            if entry is None:
                return self._text(404, "message not found")
            if what == "":
                store.set_read([entry["id"]], True)
                return self._json(detail(entry))
            if what == "/headers":
                return self._json(headers(entry))
            if what == "/raw":
                return self._send(200, entry["raw"], "text/plain; charset=utf-8")
            part = _part(entry["message"], part_id or "")
            if part is None or part.is_multipart():
                return self._text(404, "part not found")
            body = part.get_payload(decode=True) or b""
            self._send(200, body, part.get_content_type(), MAIL_CSP)

        def _view(self, message_id: str, kind: str) -> None:
            entry = store.get(message_id)
            if entry is None:
                return self._text(404, "message not found")
            message: EmailMessage = entry["message"]
            if kind == ".txt":
                return self._text(200, _body(message, "plain"))
            if kind == ".html":
                body = _body(message, "html")
                if not body:
                    return self._text(404, "this message has no HTML part")
                return self._html(embeddable(body), csp=MAIL_CSP)
            store.set_read([entry["id"]], True)
            self._html(message_page(entry))

        def _put(self, path: str, query: dict[str, list[str]]) -> None:
            if path != "/api/v1/messages":
                return self._text(404, "not found")
            request = decode_request(self._body())
            ids, search = request.get("IDs") or [], request.get("Search") or ""
            if ids and search:
                raise BadRequest("You may specify either IDs or a search query, not both")
            read = bool(request.get("Read"))
            if search:
                matches = store.matching(search, _first(query, "tz"))
                store.set_read([entry["id"] for entry in matches], read)
            else:
                store.set_read(ids or None, read)
            self._text(200, "ok")

        def _delete(self, path: str, query: dict[str, list[str]]) -> None:
            if path == "/api/v1/search":
                matches = store.matching(search_query(query), _first(query, "tz"))
                store.delete([entry["id"] for entry in matches])
                return self._text(200, "ok")
            if path != "/api/v1/messages":
                return self._text(404, "not found")
            try:
                ids = decode_request(self._body()).get("IDs")
            except BadRequest:
                ids = None  # Mailpit: a body it cannot read deletes every message
            store.delete(ids or None)
            self._text(200, "ok")

    return Handler


def _first(query: dict[str, list[str]], name: str) -> str:
    return (query.get(name) or [""])[0]


def start_and_limit(query: dict[str, list[str]]) -> tuple[int, int]:
    """Mailpit's getStartLimit: ``start`` a positive whole number else 0, ``limit`` a whole
    number from 0 else 50; anything else falls back to the default, never an error."""
    start, limit = _integer(_first(query, "start")), _integer(_first(query, "limit"))
    return (
        start if start is not None and start > 0 else 0,
        limit if limit is not None and limit > -1 else DEFAULT_LIMIT,
    )


def _integer(text: str) -> int | None:
    """Go's strconv.Atoi: an optional sign and decimal digits that fit 64 bits, nothing else."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def search_query(query: dict[str, list[str]]) -> str:
    found = _first(query, "query").strip()
    if not found:
        raise BadRequest("Error: no search query")
    return found


REQUEST_FIELDS = {"ids": ("IDs", list), "read": ("Read", bool), "search": ("Search", str)}


def decode_request(body: bytes) -> dict[str, Any]:
    """A PUT or DELETE body as Go's encoding/json reads it into Mailpit's request struct:
    the first JSON value, an object (or null), field names matched ignoring case, unknown
    ones skipped, a known one of the wrong type an error, as is an empty or unreadable body."""
    try:
        value, _ = json.JSONDecoder().raw_decode(body.decode("utf-8").lstrip())
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the request body is not JSON") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("the request body must be a JSON object")
    decoded: dict[str, Any] = {}
    for key, item in value.items():
        name, kind = REQUEST_FIELDS.get(key.lower(), (None, None))
        if name is None or item is None:
            continue
        wrong = not isinstance(item, kind) or (
            kind is list and not all(isinstance(i, str) for i in item)
        )
        if wrong:
            raise BadRequest(
                f"{name} must be {kind.__name__ if kind is not list else 'a list of strings'}"
            )
        decoded[name] = item
    return decoded


class MailCatcher:
    """SMTP + HTTP servers sharing one store; start() returns once both accept connections."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        smtp_port: int = 1025,
        http_port: int = 8025,
        store_dir: Path | None = None,
        settings: CatcherSettings | None = None,
    ) -> None:
        self.smtp_port, self.http_port = smtp_port, http_port
        self.settings = settings = settings or CatcherSettings()
        self.store = MailStore(store_dir, settings.max_messages)
        self._smtp = _SmtpController(
            self.store,
            hostname=host,
            port=smtp_port,
            data_size_limit=settings.max_message_bytes,
        )
        hosts = frozenset(host_name(name) for name in (*settings.allowed_hosts, *_bound_name(host)))
        self._http = ThreadingHTTPServer((host, http_port), _make_http_handler(self.store, hosts))
        self.http_port = self._http.server_address[1]  # the real one when asked for port 0
        self._http_thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def start(self) -> None:
        self._smtp.start()
        self._http_thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._smtp.stop()


def _bound_name(host: str) -> Iterator[str]:
    """The address it listens on answers too, unless that is every address."""
    if host not in ("", "0.0.0.0", "::"):
        yield host


def main(argv: list[str] | None = None) -> None:
    defaults = CatcherSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--store", type=Path, help="also keep each mail as an .eml file here")
    parser.add_argument(
        "--max-messages",
        type=int,
        default=defaults.max_messages,
        help="mails kept, the oldest dropped first (0: no limit)",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=defaults.max_message_bytes,
        help="larger mails are refused with SMTP 552 (0: no limit)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        help="one more host name the HTTP side answers to, besides "
        + ", ".join(defaults.allowed_hosts)
        + " (repeatable)",
    )
    args = parser.parse_args(argv)
    settings = CatcherSettings(
        max_messages=args.max_messages,
        max_message_bytes=args.max_message_bytes,
        allowed_hosts=(*defaults.allowed_hosts, *args.allowed_host),
    )
    catcher = MailCatcher(args.host, args.smtp_port, args.http_port, args.store, settings)
    catcher.start()
    print(
        f"mailcatcher: SMTP on {args.host}:{args.smtp_port}, HTTP on {args.host}:{args.http_port}",
        flush=True,
    )
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    catcher.stop()


if __name__ == "__main__":
    main()
