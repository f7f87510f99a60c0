"""A small SMTP catcher with a Mailpit-compatible HTTP API.

Mails sent by Airflow land here instead of anybody's inbox. The HTTP side answers the
subset of Mailpit's API that people and tests use (``/api/v1/messages``,
``/api/v1/message/<ID>``, ``DELETE /api/v1/messages``, ``/livez``), so the same checks work
against this catcher and against Mailpit in the Compose stack.

Run it with ``python -m embedded.mailcatcher --smtp-port 1025 --http-port 8025``.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import html
import json
import signal
import threading
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


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
        created = datetime.now(UTC).isoformat()
        if self.directory is not None:
            stamp = created.replace(":", "").replace("-", "")[:15]
            (self.directory / f"{stamp}-{message_id[:8]}.eml").write_bytes(raw)
        with self._lock:
            self._messages.append(
                {
                    "id": message_id,
                    "created": created,
                    "from": mail_from,
                    "to": list(rcpt_tos),
                    "message": message,
                    "size": len(raw),
                }
            )
        return message_id

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._messages)

    def get(self, message_id: str) -> dict[str, Any] | None:
        with self._lock:
            return next((m for m in self._messages if m["id"] == message_id), None)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else ""


def summary(entry: dict[str, Any]) -> dict[str, Any]:
    """Mailpit's message summary shape (the fields people actually read)."""
    message: EmailMessage = entry["message"]
    text = _body(message, "plain")
    return {
        "ID": entry["id"],
        "MessageID": message.get("Message-ID", ""),
        "Subject": str(message.get("Subject", "")),
        "From": {"Name": "", "Address": entry["from"]},
        "To": [{"Name": "", "Address": address} for address in entry["to"]],
        "Created": entry["created"],
        "Size": entry["size"],
        "Snippet": " ".join(text.split())[:250],
    }


def detail(entry: dict[str, Any]) -> dict[str, Any]:
    message: EmailMessage = entry["message"]
    return {
        **summary(entry),
        "Text": _body(message, "plain"),
        "HTML": _body(message, "html"),
        "Attachments": [
            {"FileName": part.get_filename(), "ContentType": part.get_content_type()}
            for part in message.iter_attachments()
        ],
    }


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

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: Any) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path in ("/livez", "/readyz"):
                self._send(200, b"ok", "text/plain")
            elif path == "/api/v1/messages":
                messages = [summary(m) for m in reversed(store.all())]
                self._json(
                    200, {"total": len(messages), "count": len(messages), "messages": messages}
                )
            elif path.startswith("/api/v1/message/"):
                entry = store.get(path.rsplit("/", 1)[1])
                if entry is None:
                    self._json(404, {"error": "message not found"})
                else:
                    self._json(200, detail(entry))
            elif path == "/":
                self._send(200, self._index().encode(), "text/html; charset=utf-8")
            else:
                self._json(404, {"error": "not found"})

        def do_DELETE(self) -> None:
            if self.path.rstrip("/") == "/api/v1/messages":
                store.clear()
                self._send(200, b"ok", "text/plain")
            else:
                self._json(404, {"error": "not found"})

        def _index(self) -> str:
            rows = "".join(
                f"<tr><td>{html.escape(m['created'])}</td><td>{html.escape(m['from'])}</td>"
                f"<td>{html.escape(', '.join(m['to']))}</td>"
                f"<td>{html.escape(str(m['message'].get('Subject', '')))}</td></tr>"
                for m in reversed(store.all())
            )
            return (
                "<!doctype html><title>Mail catcher</title><h1>Caught mail</h1>"
                "<table border=1 cellpadding=4><tr><th>Received</th><th>From</th><th>To</th>"
                f"<th>Subject</th></tr>{rows}</table>"
            )

    return Handler


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
