"""Free TCP ports, so a stack or server started by a test never collides with a running one."""

from __future__ import annotations

import socket
from dataclasses import fields

from embedded.stack import Ports


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports() -> Ports:
    """Every port an embedded stack listens on, each one nobody listens on now."""
    return Ports(*(free_port() for _ in fields(Ports)))
