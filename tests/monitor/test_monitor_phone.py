"""The monitor's pages for every model kind in a real browser (Debian's
chromium-headless-shell) at phone width (390 px) and on a desktop: nothing wider than the
screen, chart labels readable, no console error. Pages read the local REST API stand-in;
screenshots go to test-artifacts/screenshots/ (git-ignored)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from embedded.stack import REPO_ROOT
from testkit.browser import PHONE_WIDTH, Browser
from testkit.local_http import served_wsgi

SHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
PAGES = {
    "multiclass-run": "/success",
    "multiclass-history": "/history",
    "regression-run": "/models/diabetes",
    "regression-history": "/models/diabetes/history",
    "binary-run": "/models/cancer",
    "models": "/models/",
}
READABLE_PX = 10  # chart text drawn smaller than this cannot be read on a phone


@pytest.fixture(scope="module")
def phone() -> Iterator[Browser]:
    opened = Browser(width=PHONE_WIDTH)
    yield opened
    opened.close()


@pytest.fixture
def monitor_url(make_kinds_app) -> Iterator[str]:
    with served_wsgi(make_kinds_app()) as url:
        yield url


@pytest.mark.parametrize("shot", list(PAGES))
def test_phone_width_pages_fit_the_screen(phone: Browser, monitor_url: str, shot: str) -> None:
    assert phone.open(monitor_url + PAGES[shot]) == []
    phone.screenshot(SHOTS / f"phone-{shot}.png")

    assert phone.evaluate("window.innerWidth") == PHONE_WIDTH
    overflowing = phone.evaluate(
        "[...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > innerWidth + 1)"
        ".map(e => e.tagName + '.' + e.className)"
    )
    assert overflowing == []  # no table wider than the screen, not even in a scroll box
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH


@pytest.mark.parametrize("shot", ["multiclass-history", "regression-history"])
def test_chart_labels_are_readable_on_a_phone(phone: Browser, monitor_url: str, shot: str) -> None:
    assert phone.open(monitor_url + PAGES[shot]) == []

    heights = phone.evaluate(
        "[...document.querySelectorAll('svg.chart text')]"
        ".map(t => t.getBoundingClientRect().height)"
    )
    assert heights and min(heights) >= READABLE_PX, heights


def test_history_on_a_desktop(monitor_url: str) -> None:
    desktop = Browser()
    try:
        assert desktop.open(monitor_url + "/models/diabetes/history") == []
        desktop.screenshot(SHOTS / "desktop-regression-history.png")
        heights = desktop.evaluate(
            "[...document.querySelectorAll('svg.chart text')]"
            ".map(t => t.getBoundingClientRect().height)"
        )
        assert max(heights) < 24, "chart text must not blow up on a wide screen"
    finally:
        desktop.close()
