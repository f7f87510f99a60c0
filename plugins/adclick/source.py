"""Open the dataset once: a regular file of bounded size, inside the data root when there is one.

Everything after (hashing, the text checks, parsing) reads the one descriptor opened here, so
what was checked is what is trained on. Nothing a user can name blocks or exhausts a reader:
the file is opened non-blocking (a FIFO with no writer returns at once), ``fstat`` must say
regular file (not a FIFO, device, directory or socket), and its size must be under a limit.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from adclick import storage
from adclick.errors import ConfigError, DataValidationError

MAX_MB_VARIABLE = "ADCLICK_MAX_DATASET_MB"
DEFAULT_MAX_MB = 500
MB = 1_000_000

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KINDS = (
    (stat.S_ISDIR, "is a directory, not a CSV file"),
    (stat.S_ISFIFO, "is a named pipe (FIFO), not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
)


def max_bytes_from_env() -> int:
    """The size limit in bytes: ``ADCLICK_MAX_DATASET_MB`` megabytes (10^6 bytes), default 500."""
    raw = os.environ.get(MAX_MB_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_MAX_MB * MB
    try:
        limit = float(raw)
    except ValueError:
        limit = 0.0
    if not limit > 0:
        raise ConfigError(f"{MAX_MB_VARIABLE} must be a positive number of megabytes, got {raw!r}")
    return int(limit * MB)


@dataclass(frozen=True)
class OpenedFile:
    """A dataset opened once: its descriptor, named by the path the user gave."""

    path: Path
    fd: int
    size: int
    max_bytes: int
    _identity: tuple[int, int, int]

    @contextmanager
    def binary(self) -> Iterator[BinaryIO]:
        """The file from its first byte, as a binary stream over the one descriptor."""
        os.lseek(self.fd, 0, os.SEEK_SET)
        with open(os.dup(self.fd), "rb") as handle:
            yield handle

    @contextmanager
    def text(self, encoding: str) -> Iterator[TextIO]:
        """The file from its first byte as text, newlines untranslated (what csv expects)."""
        os.lseek(self.fd, 0, os.SEEK_SET)
        with open(os.dup(self.fd), encoding=encoding, newline="") as handle:
            yield handle

    def too_large(self, size: int) -> DataValidationError:
        return DataValidationError(
            self.path,
            f"the file is {size / MB:.1f} MB, larger than the limit of {self.max_bytes / MB:g} MB "
            f"({MAX_MB_VARIABLE})",
        )

    def check_unchanged(self) -> None:
        """Refuse a file that was written to while it was read: its hash would not match."""
        if _identity(os.fstat(self.fd)) != self._identity:
            raise DataValidationError(
                self.path, "the file changed while it was being read; train once it is complete"
            )


@contextmanager
def open_dataset(
    path: storage.StoragePath | str, *, root: storage.StoragePath | None = None, max_bytes: int
) -> Iterator[OpenedFile]:
    """Open ``path`` for reading and prove it is a regular file of at most ``max_bytes``.

    With ``root``, ``path`` must be an already resolved path inside it, and it is opened one
    component at a time from ``root`` without following any symlink: a link swapped in after
    the path was checked cannot lead outside. Every refusal is a :class:`DataValidationError`
    naming ``path``.
    """
    path = storage.location(path)
    if not storage.is_local(path):
        with _fetch_object(path, root, max_bytes) as opened:
            yield opened
        return
    fd = _open(path, root)
    try:
        info = os.fstat(fd)
        for is_kind, problem in _KINDS:
            if is_kind(info.st_mode):
                raise DataValidationError(path, problem)
        if not stat.S_ISREG(info.st_mode):
            raise DataValidationError(path, "is not a regular file")
        os.set_blocking(fd, True)
        opened = OpenedFile(path, fd, info.st_size, max_bytes, _identity(info))
        if info.st_size > max_bytes:
            raise opened.too_large(info.st_size)
        yield opened
    finally:
        os.close(fd)


@contextmanager
def _fetch_object(
    path: storage.StoragePath, root: storage.StoragePath | None, max_bytes: int
) -> Iterator[OpenedFile]:
    """An object, checked by its HEAD (a file, not a prefix; its size) before a byte is read,
    then copied into an unnamed local file: the checks after read that copy, so what was
    checked is what is trained on."""
    if root is not None and not storage.within(path, storage.location(root)):
        raise DataValidationError(path, "is outside the data root")
    head = _head(path)
    size = int(head.get("size") or 0)
    with tempfile.TemporaryFile(prefix="adclick-dataset-") as copy:
        opened = OpenedFile(
            path, copy.fileno(), size, max_bytes, _identity(os.fstat(copy.fileno()))
        )
        if size > max_bytes:
            raise opened.too_large(size)
        try:
            with path.open("rb") as remote:
                while chunk := remote.read(1 << 22):
                    copy.write(chunk)
                    if copy.tell() > max_bytes:
                        raise opened.too_large(copy.tell())
        except storage.errors(path) as exc:
            raise DataValidationError(path, f"cannot read the object: {exc}") from None
        copy.flush()
        if copy.tell() != size or _head(path).get("ETag") != head.get("ETag"):
            raise DataValidationError(
                path, "the object changed while it was being read; train once it is complete"
            )
        yield OpenedFile(path, copy.fileno(), size, max_bytes, _identity(os.fstat(copy.fileno())))


def _head(path: storage.StoragePath) -> dict:
    try:
        head = path.fs.info(path.path, refresh=True)
    except FileNotFoundError:
        raise DataValidationError(path, "no such object") from None
    except storage.errors(path) as exc:
        raise DataValidationError(path, f"cannot read the object: {exc}") from None
    if head.get("type") == "directory":
        raise DataValidationError(path, "is a prefix (a directory), not a CSV object")
    return head


def _identity(info: os.stat_result) -> tuple[int, int, int]:
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _open(path: Path, root: Path | None) -> int:
    try:
        if root is None:
            return os.open(path, _OPEN_FLAGS)
        return _open_beneath(path, Path(root))
    except DataValidationError:  # a ValueError too, but already the whole story
        raise
    except ValueError as exc:  # an embedded NUL byte
        raise DataValidationError(repr(str(path)), f"not a usable file name: {exc}") from None
    except OSError as exc:
        raise DataValidationError(path, _open_problem(exc, beneath=root is not None)) from None


def _open_beneath(path: Path, root: Path) -> int:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        raise DataValidationError(path, "is outside the data root") from None
    directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if not parts:
            return os.open(".", _OPEN_FLAGS, dir_fd=directory)
        for part in parts[:-1]:
            inner = _open_directory(part, directory)
            os.close(directory)
            directory = inner
        return os.open(parts[-1], _OPEN_FLAGS | os.O_NOFOLLOW, dir_fd=directory)
    finally:
        os.close(directory)


def _open_directory(name: str, parent: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except NotADirectoryError:  # what O_NOFOLLOW | O_DIRECTORY says of a symlink, too
        if stat.S_ISLNK(os.lstat(name, dir_fd=parent).st_mode):
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP)) from None
        raise


def _open_problem(exc: OSError, *, beneath: bool) -> str:
    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is not a directory"
    if exc.errno == errno.ELOOP and beneath:
        return "a symbolic link appeared in the path after it was checked; refusing to follow it"
    if exc.errno == errno.ELOOP:
        return "cannot open the file: a symbolic link loop"
    if exc.errno == errno.ENXIO:
        return "is a socket or device without a reader, not a regular file"
    return f"cannot open the file: {exc.strerror or exc}"
