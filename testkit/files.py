"""Directory contents as checkable values."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with its SHA-256: 'byte-identical' made checkable."""
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@contextmanager
def read_only(directory: Path) -> Iterator[Path]:
    """``directory`` read-only for real: a read-only bind mount for root (which ignores
    permissions), write permission taken away from anyone else; skipped loudly where
    neither works."""
    if os.geteuid() != 0:
        dirs = [directory, *(p for p in directory.rglob("*") if p.is_dir())]
        for d in dirs:
            d.chmod(0o555)
        try:
            yield directory
        finally:
            for d in dirs:
                d.chmod(0o755)
        return
    bind = _mount("--bind", str(directory), str(directory))
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount {directory} read-only: {bind.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(directory)], check=True)
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


@contextmanager
def small_filesystem(directory: Path, size_kb: int) -> Iterator[Path]:
    """A real tmpfs of ``size_kb`` mounted on (empty) ``directory``: a disk that fills up.
    Needs root; skipped loudly elsewhere."""
    mounted = _mount("-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(directory))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs on {directory}: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


def load_model_file(path: Path | str):
    """The model in a model file the pipeline wrote (skops or pickle), as the stack loads it;
    the test vouches for the bytes it reads."""
    from adclick import integrity, modelfile

    data = Path(path).read_bytes()
    return modelfile.load(data, integrity.sha256(data), path, "by the test")
