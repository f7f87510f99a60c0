"""What a long-running stack may delete, and deleting it: old run working directories, old
model versions that are not current, old log files, and the metadata rows Airflow itself
purges (``airflow db clean``).

Every decision is a function of a root, a clock (``now``) and a window, so it can be tested
on a directory tree without Airflow. Each ``remove_*`` function returns a report of what it
removed (names and bytes freed) that the maintenance DAG logs and returns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adclick import contract, storage
from adclick.errors import AdclickError
from adclick.registry import METADATA_FILE, ModelRegistry

DEFAULT_RUN_DIR_DAYS = 14
DEFAULT_LOG_DAYS = 30
DEFAULT_MODEL_VERSION_DAYS = 30
DEFAULT_KEEP_MODEL_VERSIONS = 5
DEFAULT_METADATA_DAYS = 90

# A version is first renamed to a hidden name, then deleted: an interrupted deletion never
# leaves a half-deleted directory that looks like a complete version.
_EXPIRED_PREFIX = ".expired-"


@dataclass(frozen=True)
class RetentionWindows:
    """How long each kind of item is kept; ``keep_model_versions`` newest versions always stay."""

    run_dirs: timedelta = timedelta(days=DEFAULT_RUN_DIR_DAYS)
    logs: timedelta = timedelta(days=DEFAULT_LOG_DAYS)
    model_versions: timedelta = timedelta(days=DEFAULT_MODEL_VERSION_DAYS)
    keep_model_versions: int = DEFAULT_KEEP_MODEL_VERSIONS
    metadata: timedelta = timedelta(days=DEFAULT_METADATA_DAYS)

    def __post_init__(self) -> None:
        for name in ("run_dirs", "logs", "model_versions", "metadata"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"retention window {name} must not be negative")
        # The newest version may be the one a run is promoting right now.
        if self.keep_model_versions < 1:
            raise ValueError("keep_model_versions must be at least 1")


@dataclass
class Removed:
    """One sweep's outcome: what went (relative to the swept root), bytes freed, what failed."""

    root: str
    items: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "root": self.root,
            "removed": len(self.items),
            "items": self.items,
            "freed_bytes": self.freed_bytes,
            "errors": self.errors,
        }


def cutoff(now: datetime, window: timedelta) -> datetime:
    """Items last changed before this moment are expired."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now - window


# -- run working directories ------------------------------------------------------------------
def expired_run_dirs(artifact_root: Path, now: datetime, window: timedelta) -> list[Path]:
    """Run working directories (``<root>/<dag_id>/<run>/``) in which nothing changed within
    ``window``. A directory a running or retried task still writes to is never expired."""
    limit = cutoff(now, window).timestamp()
    expired = []
    for dag_dir in _subdirs(Path(artifact_root)):
        for run_dir in _subdirs(dag_dir):
            if _newest_mtime(run_dir) < limit:
                expired.append(run_dir)
    return expired


def remove_run_dirs(
    artifact_root: storage.StoragePath, now: datetime, window: timedelta
) -> Removed:
    root = storage.location(artifact_root)
    if not storage.is_local(root):
        return _remove_run_prefixes(root, cutoff(now, window).timestamp())
    removed = Removed(str(root))
    for run_dir in expired_run_dirs(root, now, window):
        _remove_tree(run_dir, root, removed)
    return removed


def _remove_run_prefixes(root: storage.StoragePath, limit: float) -> Removed:
    """Run directories in an object store: ``<dag>/<run>/`` prefixes whose newest object is
    older than ``limit``, judged from one listing of the root."""
    removed = Removed(str(root))
    runs: dict[str, list[storage.ObjectInfo]] = {}
    for info in storage.objects(root):
        dag, _, rest = info.name.partition("/")
        run, _, name = rest.partition("/")
        if name:  # objects right under the root or a DAG's prefix are not run directories
            runs.setdefault(f"{dag}/{run}", []).append(info)
    for name, found in sorted(runs.items()):
        if max(info.modified for info in found) < limit:
            _remove_prefix(root, name, found, removed)
    return removed


def _remove_prefix(
    root: storage.StoragePath,
    name: str,
    found: list[storage.ObjectInfo],
    removed: Removed,
    first: str | None = None,
) -> None:
    try:
        storage.remove_objects(root / name, first=first)
    except storage.errors(root) as exc:
        removed.errors.append(f"{name}: {exc}")
        return
    removed.items.append(name)
    removed.freed_bytes += sum(info.size for info in found)


# -- model versions ---------------------------------------------------------------------------
def expired_model_versions(
    registry: ModelRegistry, now: datetime, window: timedelta, keep_last: int
) -> list[str]:
    """Versions older than ``window`` that are neither current nor among the ``keep_last``
    newest: rejected ones (never promoted) and superseded ones (promoted, then replaced).

    Refuses (:class:`AdclickError`) when the current version cannot be read: then nothing
    may be deleted, since nothing proves which version is live.
    """
    try:
        current = registry.current()
    except AdclickError as exc:
        raise AdclickError(f"not removing any model version: {exc}") from exc
    live = current["version"] if current else None
    versions = registry.versions()  # oldest first
    candidates = versions[: max(0, len(versions) - keep_last)]
    limit = cutoff(now, window)
    return [v for v in candidates if v != live and _version_created(registry, v) < limit]


def remove_model_versions(
    model_dir: Path, now: datetime, window: timedelta, keep_last: int
) -> Removed:
    """Remove expired versions, and leftovers of interrupted writes or deletions (hidden
    directories in ``versions/``) older than ``window``."""
    registry = ModelRegistry(model_dir)
    if not registry.local:
        return _remove_model_prefixes(registry, now, window, keep_last)
    if not registry.model_dir.is_dir():
        return Removed(str(registry.model_dir))
    with registry.locked():  # a registration in progress is not judged half-way
        return _remove_model_versions(registry, now, window, keep_last)


def remove_models_versions(
    model_root: Any, names: Sequence[str], now: datetime, window: timedelta, keep_last: int
) -> Removed:
    """:func:`remove_model_versions` in the registry folder of each model of ``names``
    (:func:`adclick.contract.registry_dir`), as one sweep of ``model_root``: items named
    relative to it (``iris/versions/v...``)."""
    removed = Removed(str(model_root))
    for name in names:
        swept = remove_model_versions(
            contract.registry_dir(model_root, name), now, window, keep_last
        )
        prefix = "" if name == contract.DEFAULT_MODEL else f"{name}/"
        removed.items += [prefix + item for item in swept.items]
        removed.errors += [prefix + error for error in swept.errors]
        removed.freed_bytes += swept.freed_bytes
    return removed


def _remove_model_versions(
    registry: ModelRegistry, now: datetime, window: timedelta, keep_last: int
) -> Removed:
    removed = Removed(str(registry.model_dir))
    for version in expired_model_versions(registry, now, window, keep_last):
        directory = registry.versions_dir / version
        size = _tree_size(directory)
        hidden = registry.versions_dir / f"{_EXPIRED_PREFIX}{uuid.uuid4().hex}-{version}"
        try:
            os.rename(directory, hidden)
        except OSError as exc:
            removed.errors.append(f"{version}: {exc}")
            continue
        shutil.rmtree(hidden, ignore_errors=True)
        removed.items.append(f"versions/{version}")
        removed.freed_bytes += size
    limit = cutoff(now, window).timestamp()
    for leftover in _subdirs(registry.versions_dir, hidden=True):
        if leftover.name.startswith(".") and _newest_mtime(leftover) < limit:
            _remove_tree(leftover, registry.model_dir, removed)
    return removed


def _remove_model_prefixes(
    registry: ModelRegistry, now: datetime, window: timedelta, keep_last: int
) -> Removed:
    """Versions in an object store: each one's ``metadata.json`` goes first, so a deletion
    cut short leaves a prefix that is no longer a version; such prefixes, and those of
    writes cut short, go once older than ``window``."""
    removed = Removed(str(registry.model_dir))
    expired = set(expired_model_versions(registry, now, window, keep_last))
    complete = set(registry.versions())
    limit = cutoff(now, window).timestamp()
    prefixes: dict[str, list[storage.ObjectInfo]] = {}
    for info in storage.objects(registry.versions_dir):
        version, _, name = info.name.partition("/")
        if name:
            prefixes.setdefault(version, []).append(info)
    for version, found in sorted(prefixes.items()):
        unfinished = version not in complete and max(i.modified for i in found) < limit
        if version in expired or unfinished:
            name = f"versions/{version}"
            _remove_prefix(registry.model_dir, name, found, removed, first=METADATA_FILE)
    return removed


def _version_created(registry: ModelRegistry, version: str) -> datetime:
    """When a version was registered: its metadata says so; its directory's time otherwise."""
    with contextlib.suppress(AdclickError, KeyError, TypeError, ValueError):
        created = datetime.fromisoformat(registry.version_info(version)["metadata"]["created_at"])
        return created if created.tzinfo else created.replace(tzinfo=UTC)
    mtime = (registry.versions_dir / version).stat().st_mtime
    return datetime.fromtimestamp(mtime, UTC)


# -- log files --------------------------------------------------------------------------------
def expired_log_files(log_root: Path, now: datetime, window: timedelta) -> list[Path]:
    """Files under ``log_root`` not written within ``window`` (a live log is written to,
    so it never expires). Symbolic links are not followed."""
    limit = cutoff(now, window).timestamp()
    return [path for path, info in _walk_files(Path(log_root)) if info.st_mtime < limit]


def remove_log_files(log_root: Path, now: datetime, window: timedelta) -> Removed:
    """Remove expired log files, then the directories they leave empty (never the root)."""
    root = Path(log_root)
    removed = Removed(str(root))
    for path in expired_log_files(root, now, window):
        try:
            size = path.lstat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            removed.errors.append(f"{path.relative_to(root)}: {exc}")
            continue
        removed.items.append(str(path.relative_to(root)))
        removed.freed_bytes += size
    _prune_emptied_dirs(root, {root / Path(item).parent for item in removed.items})
    return removed


# -- metadata database ------------------------------------------------------------------------
def db_clean_command(now: datetime, window: timedelta) -> list[str]:
    """Arguments of ``airflow db clean`` that purge metadata rows older than ``window``.

    No archive tables (they would grow instead), no prompt, and a non-zero exit when any
    table could not be cleaned, so a failing clean-up is never reported as a success.
    """
    return [
        "db",
        "clean",
        "--clean-before-timestamp",
        cutoff(now, window).isoformat(),
        "--skip-archive",
        "--error-on-cleanup-failure",
        "--yes",
    ]


# -- filesystem helpers -----------------------------------------------------------------------
def _subdirs(directory: Path, *, hidden: bool = False) -> Iterator[Path]:
    """Real subdirectories (no symbolic links); hidden ones only when asked for."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.is_dir(follow_symlinks=False) and entry.name.startswith(".") == hidden:
            yield Path(entry.path)


def _walk_files(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            with contextlib.suppress(FileNotFoundError):
                info = path.lstat()
                if stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
                    yield path, info


def _newest_mtime(directory: Path) -> float:
    times = [directory.lstat().st_mtime]
    for dirpath, dirnames, _files in os.walk(directory):
        times.extend(Path(dirpath, d).lstat().st_mtime for d in dirnames)
    times.extend(info.st_mtime for _path, info in _walk_files(directory))
    return max(times)


def _tree_size(directory: Path) -> int:
    return sum(info.st_size for _path, info in _walk_files(directory))


def _remove_tree(directory: Path, root: Path, removed: Removed) -> None:
    name = str(directory.relative_to(root))
    size = _tree_size(directory)
    try:
        shutil.rmtree(directory)
    except OSError as exc:
        removed.errors.append(f"{name}: {exc}")
        return
    removed.items.append(name)
    removed.freed_bytes += size


def _prune_emptied_dirs(root: Path, emptied: Iterable[Path]) -> None:
    """Remove the directories that removing files left empty, deepest first, up to ``root``.

    Only those: an empty directory Airflow has just made for a new log file stays.
    """
    candidates: set[Path] = set()
    for directory in emptied:
        while directory != root and directory.is_relative_to(root):
            candidates.add(directory)
            directory = directory.parent
    for directory in sorted(candidates, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty, or already gone
            directory.rmdir()
