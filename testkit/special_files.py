"""Paths that are anything but a readable regular file, and what refusing each must say."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


def special_file(kind: str, where: Path) -> Path:
    """A path of ``kind`` in ``where`` that is anything but a readable regular file."""
    path = where / f"{kind}.csv"
    if kind == "fifo":
        os.mkfifo(path)  # opened to read the usual way, it blocks until a writer comes
    elif kind == "dev_zero":
        path.symlink_to("/dev/zero")  # endless
    elif kind == "char_device":
        try:  # /dev/zero's own device node, for where a link out of a directory is refused
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))
        except PermissionError:
            pytest.skip("making a device node needs root")
    elif kind == "symlink_loop":
        path.symlink_to(path.name)
    elif kind == "directory":
        path.mkdir()
    elif kind == "long_name":
        path = where / ("x" * 300 + ".csv")
    return path


KINDS = {
    "fifo": "is a named pipe (FIFO), not a regular file",
    "dev_zero": "is a character device, not a regular file",
    "char_device": "is a character device, not a regular file",
    "symlink_loop": "cannot open the file: a symbolic link loop",
    "directory": "is a directory, not a CSV file",
    "long_name": "cannot open the file: File name too long",
}
