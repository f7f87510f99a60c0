"""A small SMTP catcher with Mailpit's HTTP API and a web page to read what it caught.

Mails sent by Airflow land here instead of anybody's inbox. The HTTP side answers these
routes of Mailpit's API (v1) with the same fields, so tools written for Mailpit work against
it, and the Compose stack's Mailpit can be checked the same way:

    GET    /api/v1/messages?start=&limit=   MessagesSummary, newest first
    PUT    /api/v1/messages                 {"IDs": [...], "Read": bool}: read status
    DELETE /api/v1/messages                 {"IDs": [...]}, or every message without IDs
    GET    /api/v1/message/{ID}             Message (marks it read); ID may be ``latest``
    GET    /api/v1/message/{ID}/headers     {header: [values]}, header names sorted
    GET    /api/v1/message/{ID}/raw         the source as received
    GET    /api/v1/message/{ID}/part/{PartID}  one attachment or inline part
    GET    /view/{ID}.html, /view/{ID}.txt  the HTML part (sandboxed) and the text part
    GET    /livez, /readyz

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
import re
import signal
import threading
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from aiosmtpd.controller import Controller

SNIPPET_CHARS = 250  # Mailpit's MessageSummary.Snippet: "up to 250 characters"
DEFAULT_LIMIT = 50  # Mailpit's default page size of /api/v1/messages


# -- the store ------------------------------------------------------------------------------
class MailStore:
    """Thread-safe list of received messages, optionally mirrored to ``.eml`` files."""

    def __init__(self, directory: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self.directory = directory
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def add(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> str:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        message_id = uuid.uuid4().hex
        created = datetime.now(UTC)
        if self.directory is not None:
            stamp = created.strftime("%Y%m%dT%H%M%S")
            (self.directory / f"{stamp}-{message_id[:8]}.eml").write_bytes(raw)
        entry = {
            "id": message_id,
            "created": created,
            "from": mail_from,
            "to": list(rcpt_tos),
            "message": message,
            "raw": raw,
            "read": False,
        }
        with self._lock:
            self._messages.append(entry)
        return message_id

    def all(self) -> list[dict[str, Any]]:
        """Newest first, as Mailpit lists them."""
        with self._lock:
            return list(reversed(self._messages))

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
            if ids is None:
                self._messages.clear()
            else:
                self._messages = [m for m in self._messages if m["id"] not in ids]

    def clear(self) -> None:
        self.delete()


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


def summary(entry: dict[str, Any]) -> dict[str, Any]:
    """Mailpit's MessageSummary."""
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
        "Date": _date(entry),
        "Tags": [],
        "Text": _body(message, "plain"),
        "HTML": _body(message, "html"),
        "Size": len(entry["raw"]),
        "Inline": inline,
        "Attachments": attachments,
    }


def listing(entries: list[dict[str, Any]], start: int, limit: int) -> dict[str, Any]:
    """Mailpit's MessagesSummary for one page of ``entries`` (newest first)."""
    return {
        "total": len(entries),
        "unread": sum(not e["read"] for e in entries),
        "messages_count": len(entries),
        "start": start,
        "tags": [],
        "messages": [summary(e) for e in entries[start : start + limit]],
    }


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
        f"<td>{html.escape(s['Created'][:19].replace('T', ' '))} UTC</td>"
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


def _make_http_handler(store: MailStore) -> type[BaseHTTPRequestHandler]:
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

        def _body_json(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                return {}
            return body if isinstance(body, dict) else {}

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            if path in ("/livez", "/readyz"):
                return self._text(200, "ok")
            if path == "/":
                return self._html(index_page(store.all()))
            if path == "/api/v1/messages":
                query = parse_qs(url.query)
                start = _number(query.get("start"), 0)
                limit = _number(query.get("limit"), DEFAULT_LIMIT)
                if start is None or limit is None:
                    return self._text(400, "start and limit must be whole numbers")
                return self._json(listing(store.all(), start, limit))
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

        def do_PUT(self) -> None:
            if urlsplit(self.path).path.rstrip("/") != "/api/v1/messages":
                return self._text(404, "not found")
            body = self._body_json()
            store.set_read(_ids(body), bool(body.get("Read", False)))
            self._text(200, "ok")

        def do_DELETE(self) -> None:
            if urlsplit(self.path).path.rstrip("/") != "/api/v1/messages":
                return self._text(404, "not found")
            store.delete(_ids(self._body_json()))
            self._text(200, "ok")

    return Handler


def _number(values: list[str] | None, default: int) -> int | None:
    if not values:
        return default
    return int(values[0]) if values[0].isdigit() else None


def _ids(body: dict) -> list[str] | None:
    """The ``IDs`` of a request body; none (or an empty list) means every message."""
    ids = body.get("IDs")
    return [str(i) for i in ids] if isinstance(ids, list) and ids else None


class MailCatcher:
    """SMTP + HTTP servers sharing one store; start() returns once both accept connections."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        smtp_port: int = 1025,
        http_port: int = 8025,
        store_dir: Path | None = None,
    ) -> None:
        self.smtp_port, self.http_port = smtp_port, http_port
        self.store = MailStore(store_dir)
        self._smtp = Controller(_SmtpHandler(self.store), hostname=host, port=smtp_port)
        self._http = ThreadingHTTPServer((host, http_port), _make_http_handler(self.store))
        self.http_port = self._http.server_address[1]  # the real one when asked for port 0
        self._http_thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def start(self) -> None:
        self._smtp.start()
        self._http_thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._smtp.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--store", type=Path, help="also keep every mail as an .eml file here")
    args = parser.parse_args(argv)
    catcher = MailCatcher(args.host, args.smtp_port, args.http_port, args.store)
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
