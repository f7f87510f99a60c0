"""A model file is loaded only when its bytes are the ones recorded when it was written.

Loading a pickled model runs code: whoever can write the artifacts store or the model
directory could otherwise run theirs in every process that loads it. Each writer records the
file's SHA-256 somewhere that writer alone controls (a task's result, ``current.json``), and
each loader checks it with :func:`check` before unpickling.
"""

from __future__ import annotations

import hashlib
import hmac

from adclick.errors import ArtifactError


class ModelIntegrityError(ArtifactError):
    """A model file's bytes are not the ones recorded for it: it is not loaded."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check(data: bytes, expected: str | None, path: object, recorded: str) -> None:
    """Refuse ``data`` (the bytes read from ``path``) unless its SHA-256 is ``expected``.

    ``recorded`` says where the expected hash comes from, for the message. A missing hash is
    refused too: a file nobody vouched for is not loaded.
    """
    if not expected:
        raise ModelIntegrityError(f"{path}: no SHA-256 recorded {recorded}; not loading it")
    actual = sha256(data)
    if not hmac.compare_digest(actual, str(expected)):
        raise ModelIntegrityError(
            f"{path}: SHA-256 {actual} is not {expected}, {recorded}; the file was changed "
            "after it was written, not loading it"
        )
