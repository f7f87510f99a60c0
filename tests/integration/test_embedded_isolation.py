"""What other users of the machine can reach of a running embedded stack: nothing on the
network beyond loopback, nothing in its home."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from embedded.stack import EmbeddedStack

pytestmark = pytest.mark.integration

LISTEN = "0A"


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (IPv4 and IPv6, from /proc)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == LISTEN and int(port_hex, 16) == port:
                found.add(address)
    return found


# 127.0.0.1 as /proc/net/tcp writes it (little-endian hex).
LOOPBACK_V4 = "0100007F"


def test_every_service_of_the_stack_listens_on_loopback_only(
    embedded_stack: EmbeddedStack,
) -> None:
    ports = embedded_stack.ports
    for name in ("api", "smtp", "mail_http", "worker_logs", "trigger_logs"):
        port = getattr(ports, name)
        assert listening_addresses(port) == {LOOPBACK_V4}, f"{name} (port {port})"


def test_the_home_and_its_secrets_are_private(embedded_stack: EmbeddedStack) -> None:
    home = embedded_stack.home
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("secrets.json", "simple_auth_manager_passwords.json"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
