"""Passwords given directly or in a file (``NAME`` or ``NAME_FILE``, as Docker secrets are)."""

from __future__ import annotations

from collections.abc import Mapping


def password_from(settings: Mapping[str, object], name: str, prefix: str = "") -> str:
    """``settings[name]`` when set, else the contents of the file ``settings[name + "_FILE"]``
    names (one trailing newline dropped), else an empty string. ``prefix`` is how the
    setting's name starts in the environment, for the error message."""
    value = str(settings.get(name) or "")
    path = str(settings.get(f"{name}_FILE") or "")
    if value or not path:
        return value
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().removesuffix("\n")
    except OSError as exc:
        raise ValueError(f"{prefix}{name}_FILE: cannot read {path}: {exc.strerror}") from exc
