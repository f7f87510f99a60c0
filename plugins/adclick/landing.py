"""CSV files landing in a folder or a bucket prefix: which are new, and which model they are for.

A :class:`LandingWatch` looks at the top level of one folder (the data root, or the scoring
inbox ``incoming/`` under it) and reports each CSV file that has landed since it last looked
and that carries a model's columns, with its SHA-256. What it has reported is kept in a
ledger in the model's registry folder, keyed by the file's SHA-256 (training: the same bytes
under any name are the same data) or by its name and SHA-256 (scoring: each batch is scored
into a folder of its own name). The ledger lives beside the models trained from those files
rather than in Airflow's metadata database: it is in the same store in both stacks (a folder
or the bucket), no Airflow admin edits it by accident, and the maintenance DAG's purge of old
metadata cannot make old files look new again.

The first look at a folder whose ledger does not exist yet records every file there as seen
without reporting it: deploying the stack on an existing data root starts no run. A local file
is reported only once two looks in a row found it unchanged (size, modification time, inode),
so a copy still being written is not taken; an object appears whole when its upload ends.
No Airflow import here: the triggerer's watcher and the tests drive this module.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adclick import storage

TRAINING = "training"
SCORING = "scoring"
KINDS = (TRAINING, SCORING)
# In the registry folder; a dash is never in a model name, so no model's folder is named so.
LEDGER_FILES = {TRAINING: "landed-training.json", SCORING: "landed-scoring.json"}
# The newest entries kept: a bound on the ledger, far above any real number of files.
MAX_LEDGER_ENTRIES = 10_000
HEADER_BYTES = 1 << 16
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Landed:
    """One CSV file that landed: its name relative to the watched folder, and its bytes' hash."""

    name: str
    sha256: str
    size: int

    def key(self, kind: str) -> str:
        return self.sha256 if kind == TRAINING else f"{self.name}\n{self.sha256}"


def required_columns(
    features: Sequence[str], target: str, kind: str, *, preprocessed: bool
) -> list[str]:
    """The columns a file must name to be a model's: its features to be scored; its features
    and target to be trained on, the target only when no ``data_preprocessing`` may derive it."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return [*features] if kind == SCORING or preprocessed else [*features, target]


def csv_files(folder: storage.StoragePath) -> dict[str, tuple[Any, ...]]:
    """The CSV files at the top level of ``folder`` (not below it, not hidden), each with a
    fingerprint that changes when its bytes do; a missing folder has none."""
    if storage.is_local(folder):
        return _local_files(folder)
    return _objects(folder)


def _objects(prefix: storage.StoragePath) -> dict[str, tuple[Any, ...]]:
    """One listing of the prefix's top level, fresh (not from the client's listing cache: the
    uploads come from other clients), without the objects below it."""
    root = str(prefix.path).rstrip("/")
    try:
        entries = prefix.fs.ls(root, detail=True, refresh=True)
    except FileNotFoundError:
        return {}
    found = {}
    for info in entries:
        name = info["name"].rstrip("/").rsplit("/", 1)[-1]
        if info.get("type") != "file" or not _wanted(name):
            continue
        modified = info.get("LastModified")
        when = modified.timestamp() if modified else 0.0
        found[name] = (int(info.get("size") or 0), when, info.get("ETag"))
    return found


def _wanted(name: str) -> bool:
    return name.lower().endswith(".csv") and not name.startswith(".")


def _local_files(folder: storage.StoragePath) -> dict[str, tuple[Any, ...]]:
    found = {}
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    for entry in entries:
        if not _wanted(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)  # a link is never taken as landed data
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode):
            found[entry.name] = (info.st_size, info.st_mtime_ns, info.st_ino)
    return found


def header(path: storage.StoragePath) -> tuple[str, ...]:
    """The column names of the CSV at ``path``, stripped, from its first line (empty when
    it has none that can be read)."""
    if storage.is_local(path):
        with open(path, "rb") as handle:
            start = handle.read(HEADER_BYTES)
    else:
        start = path.fs.cat_file(path.path, start=0, end=HEADER_BYTES)
    encoding = "utf-8-sig" if start.startswith(codecs.BOM_UTF8) else "utf-8"
    line = start.decode(encoding, errors="replace").splitlines()[:1]
    row = next(csv.reader(io.StringIO(line[0])), []) if line else []
    return tuple(name.strip() for name in row)


def sha256(path: storage.StoragePath) -> str:
    """The SHA-256 of the file or object at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") if storage.is_local(path) else path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def latest(folder: storage.StoragePath, columns: Sequence[str]) -> str | None:
    """The name of the newest CSV at the top of ``folder`` naming every one of ``columns``."""
    files = csv_files(folder)
    for name in sorted(files, key=lambda n: (_modified(files[n]), n), reverse=True):
        if set(columns) <= set(header(folder / name)):
            return name
    return None


def _modified(fingerprint: tuple[Any, ...]) -> float:
    return float(fingerprint[1])


class Ledger:
    """What has been reported, by key, in one JSON file of the model's registry folder."""

    def __init__(self, registry_dir: storage.StoragePath, kind: str) -> None:
        self.path = storage.location(registry_dir) / LEDGER_FILES[kind]

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}

    def record(self, landed: Iterable[Landed], kind: str) -> None:
        """Add ``landed`` (written whole: a rename, or one PUT), the oldest dropped past
        :data:`MAX_LEDGER_ENTRIES`."""
        entries = self.load()
        now = datetime.now(UTC).isoformat()
        for item in landed:
            entries[item.key(kind)] = {"name": item.name, "sha256": item.sha256, "at": now}
        newest = sorted(entries.items(), key=lambda pair: pair[1]["at"])[-MAX_LEDGER_ENTRIES:]
        data = json.dumps(dict(newest), indent=1, sort_keys=True).encode()
        if not storage.is_local(self.path):
            self.path.write_bytes(data)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_name(f".tmp-{os.getpid()}-{self.path.name}")
        staged.write_bytes(data)
        os.replace(staged, self.path)


class LandingWatch:
    """Reports the CSV files that land at the top of ``folder`` and name ``columns``."""

    def __init__(
        self, folder: storage.StoragePath, columns: Sequence[str], kind: str, ledger: Ledger
    ) -> None:
        self.folder = storage.location(folder)
        self.columns = frozenset(columns)
        self.kind = kind
        self.ledger = ledger
        self._previous: dict[str, tuple[Any, ...]] = {}
        self._seen: set[str] | None = None  # the ledger's keys, once read
        # (name, fingerprint) -> SHA-256, or None for a file that is not this model's.
        self._known: dict[tuple[str, tuple[Any, ...]], str | None] = {}

    def poll(self) -> list[Landed]:
        """The files that landed since the last call and are not in the ledger (call
        :meth:`commit` once they have been announced)."""
        current = csv_files(self.folder)
        settled = {
            name: fingerprint
            for name, fingerprint in current.items()
            if not storage.is_local(self.folder) or self._previous.get(name) == fingerprint
        }
        self._previous = current
        self._known = {k: v for k, v in self._known.items() if current.get(k[0]) == k[1]}
        if self._seen is None:
            if not self.ledger.exists():
                self.ledger.record(self._matching(current), self.kind)  # the baseline
            self._seen = set(self.ledger.load())
            return []
        return [item for item in self._matching(settled) if item.key(self.kind) not in self._seen]

    def commit(self, landed: Iterable[Landed]) -> None:
        """Record ``landed`` as reported."""
        landed = list(landed)
        self.ledger.record(landed, self.kind)
        self._seen = (self._seen or set()) | {item.key(self.kind) for item in landed}

    def _matching(self, files: dict[str, tuple[Any, ...]]) -> list[Landed]:
        found = []
        for name, fingerprint in sorted(files.items()):
            known = (name, fingerprint)
            if known not in self._known:
                path = self.folder / name
                try:
                    mine = self.columns <= set(header(path))
                    self._known[known] = sha256(path) if mine else None
                except FileNotFoundError:  # gone between the listing and the read
                    continue
            if (digest := self._known[known]) is not None:
                found.append(Landed(name=name, sha256=digest, size=int(fingerprint[0])))
        return found
