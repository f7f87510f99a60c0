"""A real headless Chromium driven over the DevTools protocol: load a page, read its rendered
DOM, collect what its console reports, save a screenshot.

Debian's ``chromium-headless-shell`` is installed when missing (root and apt-get, as on a
fresh CI machine). The pages under test run no script; the DOM is read through the protocol.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from websockets.sync.client import connect

from testkit.debian import ensure_debian_tool
from testkit.waiting import wait_until

BINARY = "chromium-headless-shell"
WIDTH, HEIGHT = 1280, 900
PHONE_WIDTH = 390  # CSS pixels of a current phone held upright


class Browser:
    """One browser process and one tab; ``close()`` ends the process it started."""

    def __init__(
        self, binary: str | None = None, timeout: float = 60.0, width: int = WIDTH
    ) -> None:
        """``width`` below 600 emulates a phone: its viewport, touch-free."""
        self.binary = binary or ensure_debian_tool(BINARY, BINARY)
        self.timeout = timeout
        self.width = width
        self._profile = Path(tempfile.mkdtemp(prefix="adclick-browser-"))
        self._process = subprocess.Popen(
            [
                self.binary,
                "--no-sandbox",  # root in CI; the pages are our own
                "--headless",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                f"--user-data-dir={self._profile}",
                f"--window-size={WIDTH},{HEIGHT}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Debian's command is a shell script that runs the browser as its child, which
            # starts helpers of its own: all in one session, so close() can end them all.
            start_new_session=True,
        )
        port = self._debugging_port()
        page = next(
            t
            for t in requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
            if t["type"] == "page"
        )
        self._ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=timeout)
        self._ids = itertools.count(1)
        self._events: list[dict] = []
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def _debugging_port(self) -> int:
        marker = self._profile / "DevToolsActivePort"

        def port_written() -> str:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with {self._process.returncode}")
            return marker.exists() and marker.read_text().strip()

        written = wait_until(port_written, self.timeout, f"{self.binary}'s debugging port")
        return int(written.split()[0])

    # -- the protocol -----------------------------------------------------------------------
    def send(self, method: str, **params: Any) -> dict:
        message_id = next(self._ids)
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=self.timeout))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._events.append(message)

    def _wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self._events):
                if event.get("method") == method:
                    return self._events.pop(i)
            self._events.append(json.loads(self._ws.recv(timeout=deadline - time.monotonic())))

    # -- what tests use ---------------------------------------------------------------------
    def open(self, url: str, dark: bool = False) -> list[str]:
        """Load ``url`` (light or dark colour scheme) and return the errors it reported:
        exceptions, console errors, refused loads (CSP), failed requests. The page's own
        status is not one: a 404 or 503 page is checked by what it says."""
        scheme = "dark" if dark else "light"
        self.send(
            "Emulation.setEmulatedMedia",
            features=[{"name": "prefers-color-scheme", "value": scheme}],
        )
        self._viewport(HEIGHT)
        self._events.clear()
        self.send("Page.navigate", url=url)
        self._wait_event("Page.loadEventFired")
        self.send("Runtime.evaluate", expression="1")  # drains what the load reported
        return [
            problem
            for event in self._events
            if (problem := _problem(event)) and not _own_status(event, url)
        ]

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page (the DOM as rendered)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """The whole page, not only the window, as a PNG."""
        height = self.evaluate("document.documentElement.scrollHeight")
        self._viewport(max(int(height), HEIGHT))
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def _viewport(self, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=height,
            deviceScaleFactor=1,
            mobile=self.width < 600,
        )

    def close(self) -> None:
        try:
            self._ws.close()
        finally:
            self._signal_session(signal.SIGTERM)  # the script would not pass it on
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
            self._signal_session(signal.SIGKILL)  # any helper still flushing its cache
            self._process.wait()
            wait_until(self._profile_removed, 10, f"{self._profile} to be removed")

    def _signal_session(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # nothing of it left
            os.killpg(self._process.pid, signum)

    def _profile_removed(self) -> bool:
        shutil.rmtree(self._profile, ignore_errors=True)
        return not self._profile.exists()


def _own_status(event: dict, url: str) -> bool:
    entry = event.get("params", {}).get("entry", {})
    return entry.get("source") == "network" and entry.get("url") == url


def _problem(event: dict) -> str | None:
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.exceptionThrown":
        return f"exception: {params['exceptionDetails'].get('text')}"
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        return f"console.{params['type']}: {params.get('args')}"
    if method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
        entry = params["entry"]
        return f"{entry.get('source')} {entry['level']}: {entry.get('text')} {entry.get('url', '')}"
    return None
