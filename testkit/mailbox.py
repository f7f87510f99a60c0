"""Read caught mail through the Mailpit-compatible API (embedded catcher or Mailpit itself)."""

from __future__ import annotations

from collections.abc import Callable

import requests

from testkit.waiting import wait_until


class Mailbox:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def messages(self) -> list[dict]:
        """Every caught mail, newest first, with its text and HTML bodies."""
        listing = requests.get(f"{self.base_url}/api/v1/messages", timeout=5).json()
        return [
            requests.get(f"{self.base_url}/api/v1/message/{m['ID']}", timeout=5).json()
            for m in listing["messages"]
        ]

    def clear(self) -> None:
        requests.delete(f"{self.base_url}/api/v1/messages", timeout=5).raise_for_status()

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 60.0) -> dict:
        """The first mail matching ``predicate``; fails with what did arrive if none does."""
        seen: list[dict] = []

        def matching() -> dict | None:
            seen[:] = self.messages()
            return next((message for message in seen if predicate(message)), None)

        try:
            return wait_until(matching, timeout, "a matching mail", poll=0.5)
        except TimeoutError:
            subjects = [m["Subject"] for m in seen]
            raise AssertionError(
                f"no matching mail after {timeout:.0f} s; got {subjects}"
            ) from None
