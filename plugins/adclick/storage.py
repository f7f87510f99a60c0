"""Storage roots: a local directory or an ``s3://bucket/prefix`` URL, as one path type.

A local path stays a :class:`pathlib.Path`, so local roots keep their code paths and speed
(atomic renames, ``flock``, opening files beneath a root without following links). A URL
becomes a :class:`upath.UPath` over s3fs, the same pathlib API on objects; Airflow's
``ObjectStoragePath`` is accepted as it is. The endpoint and keys come from the standard
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` variables, which
botocore reads itself. Object stores have no rename and no directories: callers that need
either ask :func:`is_local` and take the object path (see :mod:`adclick.registry`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from adclick.errors import ConfigError

if TYPE_CHECKING:
    from typing_extensions import TypeIs

# A Path or an object path: both speak pathlib's API, but share no declared type (a UPath is
# neither a Path nor os.PathLike, Airflow's ObjectStoragePath is a proxy). Code that needs one
# kind asks is_local, which narrows to Path for the type checker.
StoragePath: TypeAlias = Any

SCHEME = "s3"
_UNSAFE_PARTS = frozenset({"", ".", ".."})


def location(value: str | os.PathLike[str] | StoragePath) -> StoragePath:
    """``value`` as a path: local paths as :class:`Path`, ``s3://`` URLs as object paths.

    Any other URL scheme, and a URL without a bucket, is a :class:`ConfigError`.
    """
    if isinstance(value, Path) or _is_object_path(value):
        return value
    text = os.fspath(value)
    if "://" not in text:
        return Path(text)
    scheme, _, rest = text.partition("://")
    if scheme != SCHEME:
        raise ConfigError(f"{text}: a storage location is a local path or an {SCHEME}:// URL")
    if not rest.split("/", 1)[0]:
        raise ConfigError(f"{text}: the URL names no bucket")
    from upath import UPath

    return UPath(text)


def is_local(path: StoragePath) -> TypeIs[Path]:
    return isinstance(path, Path)


def _is_object_path(value: object) -> bool:
    # UPath and Airflow's ObjectStoragePath (a proxy, not a UPath subclass) both carry these
    # (looked up on the class: reading ``fs`` on the object would build a filesystem)
    kind = type(value)
    return not isinstance(value, str | Path) and hasattr(kind, "fs") and hasattr(kind, "path")


def within(path: StoragePath, root: StoragePath) -> bool:
    """Whether ``path`` lies inside ``root`` (or is it).

    Local paths are compared resolved (symlinks followed). Object paths must name the same
    store and bucket, and their keys may hold no ``.``, ``..`` or empty segment at all: a
    store may normalise those, so a key that looks inside could be read from outside.
    """
    if is_local(path) != is_local(root):
        return False
    if is_local(path):
        return Path(path).resolve().is_relative_to(Path(root).resolve())
    if path.protocol != root.protocol or not _safe_key(path) or not _safe_key(root):
        return False
    inner, outer = _segments(path), _segments(root)
    return inner[: len(outer)] == outer


def relative_name(path: object, root: StoragePath) -> str:
    """``path`` as pages and mails show it: relative to ``root`` (the data root), so nobody
    reading them learns the server's directories; a path outside is shown by its last part."""
    text = str(path)
    try:
        inner, outer = location(text), location(root)
        if is_local(inner) and is_local(outer) and inner.is_relative_to(outer):
            lexical = inner.relative_to(outer)
            if ".." not in lexical.parts:  # as named: a link inside may have moved since
                return lexical.as_posix()
        if within(inner, outer):
            if is_local(inner):
                return inner.resolve().relative_to(Path(outer).resolve()).as_posix()
            return "/".join(_segments(inner)[len(_segments(outer)) :]) or "."
    except (ValueError, OSError, RuntimeError, ConfigError):  # a NUL byte, a symlink loop
        pass
    return text.rstrip("/").rsplit("/", 1)[-1]


def _segments(path: StoragePath) -> list[str]:
    return str(path.path).rstrip("/").split("/")


def _safe_key(path: StoragePath) -> bool:
    bucket, *key = str(path.path).split("/")
    if key and key[-1] == "":  # one trailing slash names the prefix itself
        key = key[:-1]
    return bool(bucket) and not _UNSAFE_PARTS.intersection(key)


def errors(path: StoragePath) -> tuple[type[BaseException], ...]:
    """What a failed read or write of ``path`` raises: OS errors, and for objects also the
    client's own (a refused connection, a timeout)."""
    if is_local(path):
        return (OSError,)
    from botocore.exceptions import BotoCoreError

    return (OSError, BotoCoreError)


@dataclass(frozen=True)
class ObjectInfo:
    """One object under a prefix: its key relative to the prefix, size and last change."""

    name: str
    size: int
    modified: float


def objects(prefix: StoragePath) -> Iterator[ObjectInfo]:
    """Every object under ``prefix``, in one listing."""
    root = str(prefix.path).rstrip("/")
    try:
        found = prefix.fs.find(root, detail=True)
    except FileNotFoundError:
        return
    for key, info in sorted(found.items()):
        if info.get("type") == "directory":
            continue
        modified = info.get("LastModified") or datetime.now(UTC)
        yield ObjectInfo(key[len(root) + 1 :], int(info.get("size") or 0), modified.timestamp())


def remove_objects(prefix: StoragePath, first: str | None = None) -> None:
    """Delete every object under ``prefix``; ``first`` (a name under it) goes before the rest,
    so a reader that judges completeness by it never sees a half-deleted prefix as whole."""
    root = str(prefix.path).rstrip("/")
    if first is not None:
        with contextlib.suppress(FileNotFoundError):
            prefix.fs.rm(f"{root}/{first}")
    keys = [f"{root}/{info.name}" for info in objects(prefix)]
    if keys:
        prefix.fs.rm(keys)
    prefix.fs.invalidate_cache(root)


def publish(staged: Path, target: StoragePath) -> None:
    """Make the finished local file ``staged`` appear at ``target`` whole: a rename (``staged``
    lies in ``target``'s folder, see :func:`staging_name`) or one upload, which a store
    applies whole or not at all. ``staged`` is gone afterwards either way."""
    try:
        if is_local(target):
            os.replace(staged, target)
        else:
            target.fs.put_file(str(staged), str(target.path))
    finally:
        Path(staged).unlink(missing_ok=True)


def staging_name(target: StoragePath, folder: Path) -> Path:
    """Where to write ``target`` before :func:`publish`: beside it for a local file (a rename
    does not cross filesystems), in the local ``folder`` for an object."""
    import uuid

    where = Path(target).parent if is_local(target) else folder
    return where / f".tmp-{uuid.uuid4().hex}-{target.name}"


def discard(target: StoragePath) -> None:
    """Remove a published file again (its companion could not be published)."""
    with contextlib.suppress(*errors(target)):
        if is_local(target):
            Path(target).unlink(missing_ok=True)
        else:
            target.fs.rm(str(target.path))
