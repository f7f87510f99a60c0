"""The project's documentation pages: the README, SECURITY.md and every page in docs/."""

from __future__ import annotations

from pathlib import Path

from embedded.stack import REPO_ROOT


def documentation_pages() -> list[Path]:
    """Every Markdown page of the documentation, the README first."""
    return [
        REPO_ROOT / "README.md",
        REPO_ROOT / "SECURITY.md",
        *sorted((REPO_ROOT / "docs").glob("*.md")),
    ]
