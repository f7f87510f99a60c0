"""The mail catcher as a target: it holds a bounded number of mails of bounded size (the oldest
go first, their files with them), and answers only its own host names, so neither a flood of
mail nor a page elsewhere (DNS rebinding) gets further than a development inbox allows.

The catcher runs as the stack runs it: its own process, started from its command line."""

from __future__ import annotations

import email.policy
import http.client
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from embedded.mailcatcher import CatcherSettings
from embedded.stack import REPO_ROOT
from testkit.ports import free_port
from testkit.waiting import wait_until

DEFAULTS = CatcherSettings()
MB = 1 << 20


@dataclass
class Running:
    smtp_port: int
    http_port: int
    store: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def rss(self) -> int:
        fields = Path(f"/proc/{self.process.pid}/status").read_text().split("\n")
        line = next(f for f in fields if f.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024

    def listing(self) -> dict:
        return requests.get(f"{self.url}/api/v1/messages", params={"limit": 0}, timeout=5).json()


def start_catcher(store: Path, *options: str) -> Iterator[Running]:
    smtp_port, http_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "embedded.mailcatcher",
            "--smtp-port",
            str(smtp_port),
            "--http-port",
            str(http_port),
            "--store",
            str(store),
            *options,
        ],
        cwd=REPO_ROOT,
    )
    running = Running(smtp_port, http_port, store, process)
    try:

        def answers() -> bool:
            try:
                return requests.get(f"{running.url}/livez", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_until(answers, 30, "the mail catcher to answer", poll=0.2)
        yield running
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[Running]:
    yield from start_catcher(tmp_path / "mail")


def mail(subject: str, body_bytes: int = 0) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "airflow@adclick.local"
    message["To"] = "ops@adclick.local"
    message["Subject"] = subject
    # Base64 lines of a big attachment, as a mail with a file would carry.
    message.set_content(f"{subject}\n")
    if body_bytes:
        message.add_attachment(b"x" * body_bytes, maintype="application", subtype="octet-stream")
    return message


def test_a_mail_over_the_size_cap_is_refused_with_552_and_not_kept(catcher: Running) -> None:
    """The attack: 20 mails of 10 MB each grew the catcher by 430 MB. Now each is refused,
    whether the client announces its size (SIZE) or just sends the data, which is read and
    thrown away."""
    announced = mail("too big", 10 * MB).as_bytes(policy=email.policy.SMTP)
    sent = mail("too big", 3 * MB).as_bytes(policy=email.policy.SMTP)
    before = catcher.rss()
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=30) as smtp:
        smtp.ehlo()
        assert int(smtp.esmtp_features["size"]) == DEFAULTS.max_message_bytes
        for _ in range(10):
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                smtp.sendmail("a@adclick.local", ["ops@adclick.local"], announced)
            assert refused.value.smtp_code == 552
            smtp.rset()
        for _ in range(10):
            assert smtp.mail("a@adclick.local")[0] == 250
            assert smtp.rcpt("ops@adclick.local")[0] == 250
            assert smtp.data(sent)[0] == 552
        smtp.send_message(mail("fits", DEFAULTS.max_message_bytes // 2))

    listing = catcher.listing()
    assert [m["Subject"] for m in listing["messages"]] == ["fits"]
    grown = catcher.rss() - before
    assert grown < 32 * MB, f"the catcher grew by {grown / MB:.0f} MB"
    assert len(list(catcher.store.glob("*.eml"))) == 1
    info = requests.get(f"{catcher.url}/api/v1/info", timeout=5).json()
    assert info["RuntimeStats"]["SMTPRejected"] == 20
    assert info["RuntimeStats"]["SMTPAccepted"] == 1


def test_the_oldest_mails_go_first_beyond_the_count_cap(catcher: Running) -> None:
    extra = 7
    total = DEFAULTS.max_messages + extra
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=30) as smtp:
        for n in range(total):
            smtp.send_message(mail(f"mail {n}"))

    listing = catcher.listing()

    kept = [m["Subject"] for m in listing["messages"]]
    assert listing["total"] == len(kept) == DEFAULTS.max_messages
    assert kept[0] == f"mail {total - 1}" and kept[-1] == f"mail {extra}"
    assert len(list(catcher.store.glob("*.eml"))) == DEFAULTS.max_messages
    info = requests.get(f"{catcher.url}/api/v1/info", timeout=5).json()
    assert info["RuntimeStats"]["MessagesDeleted"] == extra
    assert info["RuntimeStats"]["SMTPAccepted"] == total


def test_the_caps_are_command_line_settings(tmp_path: Path) -> None:
    for running in start_catcher(
        tmp_path / "mail", "--max-messages", "3", "--max-message-bytes", "50000"
    ):
        with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=30) as smtp:
            for n in range(5):
                smtp.send_message(mail(f"mail {n}"))
            with pytest.raises(smtplib.SMTPSenderRefused):
                smtp.send_message(mail("big", 60_000))
        kept = [m["Subject"] for m in running.listing()["messages"]]
        assert kept == ["mail 4", "mail 3", "mail 2"]
        assert len(list(running.store.glob("*.eml"))) == 3


def raw_request(port: int, method: str, path: str, host: str | None) -> tuple[int, bytes]:
    """A request with exactly this ``Host`` header (none at all when ``host`` is None)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.putrequest(method, path, skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


ROUTES = [
    ("GET", "/"),
    ("GET", "/livez"),
    ("GET", "/api/v1/messages"),
    ("GET", "/api/v1/message/latest"),
    ("GET", "/api/v1/info"),
    ("GET", "/api/v1/search?query=mail"),
    ("GET", "/view/latest"),
    ("PUT", "/api/v1/messages"),
    ("DELETE", "/api/v1/search?query=mail"),
    ("DELETE", "/api/v1/messages"),
]


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8025", "127.0.0.1.evil.example", "", None]
)
def test_a_foreign_host_header_is_refused_on_every_route(catcher: Running, host) -> None:
    """DNS rebinding: a page on evil.example whose name now points to 127.0.0.1 sends its
    own name as Host. It gets 400 everywhere, and its DELETEs delete nothing."""
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=10) as smtp:
        smtp.send_message(mail("keep me"))

    for method, path in ROUTES:
        status, body = raw_request(catcher.http_port, method, path, host)
        assert status == 400, (method, path, status)
        assert b"keep me" not in body

    assert [m["Subject"] for m in catcher.listing()["messages"]] == ["keep me"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]"])
def test_its_own_names_are_answered(catcher: Running, host: str) -> None:
    for name in (host, f"{host}:{catcher.http_port}"):
        status, body = raw_request(catcher.http_port, "GET", "/api/v1/info", name)
        assert status == 200 and b"RuntimeStats" in body, name


def test_more_host_names_are_a_command_line_setting(tmp_path: Path) -> None:
    for running in start_catcher(tmp_path / "mail", "--allowed-host", "mailpit"):
        assert raw_request(running.http_port, "GET", "/livez", "mailpit:8025")[0] == 200
        assert raw_request(running.http_port, "GET", "/livez", "127.0.0.1")[0] == 200
        assert raw_request(running.http_port, "GET", "/livez", "other")[0] == 400
