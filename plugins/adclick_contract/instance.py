"""Which service answers on the monitor's port: the one a launcher started, or another
program that took the port while it was down?

Each launch gets a fresh random key, passed to the service in ``INSTANCE_KEY_VARIABLE`` and
kept by the launcher in a file only its user reads. A health check sends a fresh challenge;
the service answers with :func:`proof` of it. A program that holds the port without the key
cannot answer, and an answer it overheard does not fit the next challenge.
"""

from __future__ import annotations

import hashlib
import hmac

INSTANCE_KEY_VARIABLE = "MONITOR_INSTANCE_KEY"
CHALLENGE_PARAMETER = "challenge"
MAX_CHALLENGE_LENGTH = 128


def proof(key: str, challenge: str) -> str:
    """HMAC-SHA256 of ``challenge`` under ``key``, as hex."""
    return hmac.new(key.encode(), challenge.encode(), hashlib.sha256).hexdigest()


def proves(key: str, challenge: str, answer: object) -> bool:
    """Does ``answer`` (the service's ``proof`` field) fit ``challenge`` under ``key``?"""
    return isinstance(answer, str) and hmac.compare_digest(answer, proof(key, challenge))
