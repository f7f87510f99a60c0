"""The Flask monitor as a process on this machine: who serves its port, is it healthy."""

from __future__ import annotations

import os
from pathlib import Path

import requests

from embedded.stack import EmbeddedStack


def listening_inode(port: int) -> str | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # 0A = LISTEN
            return fields[9]
    return None


def masters_serving(port: int) -> list[int]:
    """Processes holding the listening socket whose parent does not hold it: the masters."""
    inode = listening_inode(port)
    holders = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
        except OSError:
            continue
        if f"socket:[{inode}]" in links:
            holders.add(int(proc.name))
    parents = {
        pid: int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        for pid in holders
    }
    return sorted(pid for pid in holders if parents[pid] not in holders)


def health(stack: EmbeddedStack) -> int | None:
    try:
        return requests.get(f"{stack.flask_url}/health", timeout=2).status_code
    except requests.RequestException:
        return None
