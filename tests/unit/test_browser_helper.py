"""The page tests' browser leaves nothing behind once closed: no process (Debian's command is
a script whose browser child, and that child's helpers, outlive it if only the script is
stopped) and no profile directory."""

from __future__ import annotations

from pathlib import Path

from testkit.browser import Browser
from testkit.waiting import wait_until


def live_members(group: int) -> list[int]:
    """Processes of process group ``group`` that are not zombies."""
    members = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == group and state != "Z":
            members.append(int(entry.name))
    return members


def test_closing_the_browser_ends_all_its_processes_and_removes_its_profile() -> None:
    browser = Browser()
    group, profile = browser._process.pid, browser._profile
    assert browser.open("data:text/html,<p>hello</p>") == []
    assert len(live_members(group)) > 1  # the script, the browser and its helpers

    browser.close()

    wait_until(lambda: not live_members(group), 10, "the browser's processes to end")
    assert not profile.exists()
