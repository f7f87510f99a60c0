"""Checks of a training run's trigger conf, made before any file is read.

Params validate types; these refuse what params cannot express: unknown keys, and a
``data_path`` that leaves the data root or cannot name a file at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adclick import storage
from adclick.errors import AdclickError
from adclick_airflow import settings


class ConfError(ValueError):
    """A trigger conf that must be refused before any file is read."""


def dataset_path(
    params: Mapping[str, Any],
    conf: Mapping[str, Any],
    allowed: Mapping[str, Any],
    landed: Any = None,
) -> Path:
    """Refuse unknown conf keys; return the dataset's path, checked to be inside the data root:
    the conf's ``data_path``, else the file an asset event named (``landed``), else the
    param's default."""
    check_conf_keys(dict(conf), set(allowed))
    if "data_path" not in conf and landed is not None:
        return resolve_dataset(landed)
    return resolve_dataset(params["data_path"])


def check_conf_keys(conf: dict, allowed: set[str]) -> None:
    """Params do not reject unknown keys; a typo such as ``min_acuracy`` must not pass silently."""
    unknown = sorted(set(conf) - allowed)
    if unknown:
        raise ConfError(
            f"unknown trigger conf key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def resolve_dataset(value: str, root: storage.StoragePath | None = None) -> storage.StoragePath:
    """Map the ``data_path`` param to a file inside the data root, refusing anything outside it.

    Relative values are taken from the data root; absolute ones must already be inside it.
    Symlinks are resolved first, so a link cannot smuggle a path out either. The file is
    then opened beneath the root without following links (:func:`adclick.source.open_dataset`),
    so a link swapped in after this check cannot either.
    """
    root = root or settings.data_dir()
    if not isinstance(value, str) or not value.strip():
        raise ConfError("data_path must be a non-empty string")
    if not storage.is_local(root):
        return _object_in(root, value)
    root = root.resolve()
    candidate = Path(value)
    try:
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    except ValueError as exc:  # an embedded NUL byte
        raise ConfError(f"data_path {value!r} is not a usable file name: {exc}") from None
    except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
        raise ConfError(f"data_path {value!r} cannot be resolved: {exc}") from None
    if not resolved.is_relative_to(root):
        raise ConfError(f"data_path {value!r} is outside the data root")
    return resolved


def _object_in(root: storage.StoragePath, value: str) -> storage.StoragePath:
    """The object ``value`` names (a key relative to the data root's prefix, or a URL), refused
    unless it lies under that prefix: same bucket, and no ``.``, ``..`` or empty segment."""
    if "\0" in value:
        raise ConfError(f"data_path {value!r} is not a usable object name")
    try:
        candidate = storage.location(value) if "://" in value else root / value
    except AdclickError as exc:
        raise ConfError(f"data_path {value!r}: {exc}") from None
    if not storage.within(candidate, root):
        raise ConfError(f"data_path {value!r} is outside the data root")
    return candidate
