"""Versioned model storage with a ``current`` pointer that only ever moves atomically.

Layout under ``model_dir``::

    versions/<UTC time>-<model sha256[:8]>/model.joblib, metrics.json, metadata.json
                     (and reference.parquet: a bounded sample of the training data's
                     features, what drift reports compare scored batches with)
    current.json     {"version", "model", "sha256", "promoted_at"}: the one place saying
                     which is live, with the SHA-256 its model file must have to be loaded

A version directory appears complete or not at all: it is written under a temporary name in
``versions/``, fsynced, then renamed. ``current.json`` is replaced with ``os.replace``.
Paths in ``current.json`` are relative, so the directory can be mounted elsewhere (Docker).
Registrations hold an exclusive ``flock`` on ``.lock`` (the command line and a DAG task may
register at the same moment): versions are named and ``current`` moves in one order.

In an object store (``model_dir`` an ``s3://`` URL, see :mod:`adclick.storage`) there is no
rename and no lock. A version is written completely under its own prefix, ``metadata.json``
last: only a prefix holding it is a version. ``current.json`` is then one object replaced by
one PUT, which a store applies whole or not at all, so two registrations racing end with
``current`` naming one complete version (the one whose PUT landed last).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adclick import integrity, modelfile, storage
from adclick.errors import RegistryError

MODEL_FILE = "model.joblib"
METRICS_FILE = "metrics.json"
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.parquet"  # see adclick.drift
CURRENT_FILE = "current.json"
VERSIONS_DIR = "versions"
LOCK_FILE = ".lock"
_TEMP_PREFIX = ".tmp-"
# The model file's SHA-256 in a version's metadata: what a reader checks before unpickling.
MODEL_SHA256_KEY = "model_file_sha256"


class ModelRegistry:
    """The model directory: add versions, promote one to current, read current back."""

    def __init__(self, model_dir: storage.StoragePath | str) -> None:
        self.model_dir = storage.location(model_dir)
        self.local = storage.is_local(self.model_dir)
        self._errors = storage.errors(self.model_dir)
        self._read_errors: tuple[type[BaseException], ...] = (*self._errors, ValueError)
        self.versions_dir = self.model_dir / VERSIONS_DIR
        self.current_file = self.model_dir / CURRENT_FILE

    def current(self) -> dict[str, Any] | None:
        """The current model: version, absolute ``path`` of its model file, metrics, metadata.

        None when no model was ever promoted.
        """
        try:
            pointer = json.loads(self.current_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except self._read_errors as exc:
            raise RegistryError(self.model_dir, f"read {CURRENT_FILE}", exc) from exc
        return {
            **self.version_info(pointer["version"]),
            "promoted_at": pointer.get("promoted_at"),
            "sha256": pointer.get("sha256"),
        }

    def load_current(self) -> tuple[dict[str, Any], Any] | None:
        """The current model's information (:meth:`current`) and the fitted model, loaded
        only after its file's SHA-256 matched the one ``current.json`` records
        (:class:`ModelIntegrityError` otherwise). None when no model was ever promoted."""
        current = self.current()
        if current is None:
            return None
        model_file = self.versions_dir / current["version"] / MODEL_FILE
        try:
            data = model_file.read_bytes()
        except self._errors as exc:
            raise RegistryError(self.model_dir, f"read {model_file.name}", exc) from exc
        return current, modelfile.load(data, current["sha256"], model_file, f"in {CURRENT_FILE}")

    def version_info(self, version: str) -> dict[str, Any]:
        directory = self.versions_dir / version
        try:
            metrics = json.loads((directory / METRICS_FILE).read_text(encoding="utf-8"))
            metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
        except self._read_errors as exc:
            raise RegistryError(self.model_dir, f"read version {version}", exc) from exc
        return {
            "version": version,
            "path": self._model_path(directory),
            "metrics": metrics,
            "metadata": metadata,
        }

    def version_file(self, version: str, name: str) -> bytes | None:
        """The bytes of file ``name`` stored with ``version``; None when it has none."""
        try:
            return (self.versions_dir / version / name).read_bytes()
        except FileNotFoundError:
            return None
        except self._errors as exc:
            raise RegistryError(self.model_dir, f"read {name} of version {version}", exc) from exc

    def versions(self) -> list[str]:
        """All complete versions, oldest first (names start with their UTC creation time)."""
        if not self.local:
            found = self.versions_dir.glob(f"*/{METADATA_FILE}")
            return sorted(p.parent.name for p in found if not p.parent.name.startswith("."))
        if not self.versions_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.versions_dir.iterdir() if not p.name.startswith(".") and p.is_dir()
        )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the registry across processes, for anything that adds, removes or
        promotes a version. An object store has no lock: its guarantees come from the order
        of writes (see the module's docstring)."""
        if not self.local:
            yield
            return
        try:
            self.model_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.model_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise RegistryError(self.model_dir, f"lock {LOCK_FILE}", exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def register(
        self,
        model: bytes | Path,
        metrics: Mapping[str, Any],
        metadata: Mapping[str, Any],
        *,
        promote: bool,
        promotion: Callable[[], AbstractContextManager[Any]] | None = None,
        extra_files: Mapping[str, bytes] | None = None,
    ) -> dict[str, Any]:
        """Store ``model`` (its bytes, or a file) as a new version, with ``extra_files`` (name:
        bytes, e.g. :data:`REFERENCE_FILE`) beside it; make it current when ``promote``.

        ``promotion`` (e.g. moving a registry alias elsewhere) is entered once the version is
        stored and before ``current.json`` moves, and exited after: if entering it fails, the
        new version is removed again; if moving ``current.json`` fails, it sees the error
        (and can undo what it did). Both sides move together or neither does.

        On any OS error (read-only directory, disk full) nothing is left behind: no temporary
        or new version directory, and ``current.json`` is unchanged. The model is stored byte
        for byte, so the stored model is exactly the one that was evaluated.
        """
        model_bytes = model if isinstance(model, bytes) else Path(model).read_bytes()
        with self.locked():
            created = datetime.now(UTC)
            digest = integrity.sha256(model_bytes)
            version = f"{created:%Y%m%dT%H%M%S.%f}Z-{digest[:8]}"
            metadata = {
                **metadata,
                "version": version,
                "created_at": created.isoformat(),
                MODEL_SHA256_KEY: digest,
            }
            final = self.versions_dir / version
            self._write_version(final, model_bytes, metrics, metadata, extra_files or {})
            if promote:
                moved = False
                try:
                    with promotion() if promotion else contextlib.nullcontext():
                        self._point_current_to(version, digest)
                        moved = True
                except BaseException:
                    if not moved:  # once current names it, the version must stay
                        self._remove_unpromoted(final)
                    raise
        return {
            "version": version,
            "model_path": self._model_path(final),
            "promoted": promote,
            "metrics": dict(metrics),
            "model_file_sha256": digest,
        }

    def promote(
        self,
        version: str,
        *,
        promotion: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> dict[str, Any]:
        """Make the registered ``version`` current (a promotion decided after it was stored,
        e.g. once a person approved it), its model file checked against the SHA-256 its
        metadata recorded. ``promotion`` is entered as in :meth:`register`; a version that is
        current already is left as it is."""
        with self.locked():
            info = self.version_info(version)
            digest = info["metadata"].get(MODEL_SHA256_KEY)
            model_file = self.versions_dir / version / MODEL_FILE
            try:
                data = model_file.read_bytes()
            except self._errors as exc:
                raise RegistryError(self.model_dir, f"read {model_file.name}", exc) from exc
            integrity.check(data, digest, model_file, f"in {METADATA_FILE}")
            current = self.current()
            if current is None or current["version"] != version:
                with promotion() if promotion else contextlib.nullcontext():
                    self._point_current_to(version, digest)
        return {**info, "promoted": True}

    def annotate(self, version: str, extra: Mapping[str, Any]) -> dict[str, Any]:
        """Add ``extra`` to ``version``'s ``metadata.json`` (what happened to it after it was
        stored: a person's answer); the file is replaced whole, never half-written."""
        with self.locked():
            metadata = {**self.version_info(version)["metadata"], **extra}
            target = self.versions_dir / version / METADATA_FILE
            if not self.local:
                try:  # one PUT: replaced whole or not at all
                    target.write_bytes(_json_bytes(metadata))
                except self._errors as exc:
                    raise RegistryError(self.model_dir, f"update {target.name}", exc) from exc
                return metadata
            temp = target.with_name(f"{_TEMP_PREFIX}{uuid.uuid4().hex}-{METADATA_FILE}")
            try:
                _write_durably(temp, _json_bytes(metadata))
                os.replace(temp, target)
            except OSError as exc:
                temp.unlink(missing_ok=True)
                raise RegistryError(self.model_dir, f"update {target.name}", exc) from exc
        return metadata

    def _model_path(self, directory: storage.StoragePath) -> str:
        model = directory / MODEL_FILE
        return str(model.resolve() if self.local else model)

    def _write_version(
        self,
        final: storage.StoragePath,
        model_bytes: bytes,
        metrics: Mapping[str, Any],
        metadata: Mapping[str, Any],
        extra_files: Mapping[str, bytes],
    ) -> None:
        if not self.local:  # no rename: the objects in order, the completeness marker last
            try:
                (final / MODEL_FILE).write_bytes(model_bytes)
                for name, data in extra_files.items():
                    (final / name).write_bytes(data)
                (final / METRICS_FILE).write_bytes(_json_bytes(metrics))
                (final / METADATA_FILE).write_bytes(_json_bytes(metadata))
            except self._errors as exc:
                self._remove_objects(final)
                raise RegistryError(
                    self.model_dir, f"write model version {final.name}", exc
                ) from exc
            return
        staging = self.versions_dir / f"{_TEMP_PREFIX}{uuid.uuid4().hex}"
        renamed = False
        try:
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            staging.mkdir()
            _write_durably(staging / MODEL_FILE, model_bytes)
            for name, data in extra_files.items():
                _write_durably(staging / name, data)
            _write_durably(staging / METRICS_FILE, _json_bytes(metrics))
            _write_durably(staging / METADATA_FILE, _json_bytes(metadata))
            _fsync_dir(staging)
            os.rename(staging, final)
            renamed = True
            _fsync_dir(self.versions_dir)
        except OSError as exc:
            # A rename that is not known to be durable may not survive a crash: undo it, so
            # the version is either registered and durable or not there at all.
            _remove_version(final if renamed else staging, self.versions_dir)
            raise RegistryError(self.model_dir, f"write model version {final.name}", exc) from exc

    def _remove_unpromoted(self, final: storage.StoragePath) -> None:
        """Undo a version whose promotion failed; on a store, keep it if the PUT did land
        (its answer may be what was lost): ``current`` must never name a missing version."""
        if self.local:
            _remove_version(final, self.versions_dir)
            return
        with contextlib.suppress(*self._errors, ValueError, KeyError):
            pointer = json.loads(self.current_file.read_text(encoding="utf-8"))
            if pointer["version"] == final.name:
                return
        self._remove_objects(final)

    def _remove_objects(self, prefix: storage.StoragePath) -> None:
        with contextlib.suppress(*self._errors):
            storage.remove_objects(prefix, first=METADATA_FILE)

    def _point_current_to(self, version: str, digest: str) -> None:
        pointer = {
            "version": version,
            "model": f"{VERSIONS_DIR}/{version}/{MODEL_FILE}",
            "sha256": digest,
            "promoted_at": datetime.now(UTC).isoformat(),
        }
        if not self.local:
            try:  # one PUT: the store replaces the object whole, or not at all
                self.current_file.write_bytes(_json_bytes(pointer))
            except self._errors as exc:
                raise RegistryError(self.model_dir, f"update {CURRENT_FILE}", exc) from exc
            return
        temp = self.model_dir / f"{_TEMP_PREFIX}{uuid.uuid4().hex}-{CURRENT_FILE}"
        try:
            _write_durably(temp, _json_bytes(pointer))
            os.replace(temp, self.current_file)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise RegistryError(self.model_dir, f"update {CURRENT_FILE}", exc) from exc
        # The pointer has moved: from here on the new version must stay, whatever happens.
        with contextlib.suppress(OSError):
            _fsync_dir(self.model_dir)


def _remove_version(directory: Path, versions_dir: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):
        _fsync_dir(versions_dir)


def _json_bytes(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _write_durably(path: Path, data: bytes) -> None:
    """Write and fsync, so a crash cannot leave a renamed-but-empty file behind."""
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
