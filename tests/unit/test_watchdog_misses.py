"""The watchdog's trigger counts misses in a row: it fires on the ``failures``-th consecutive
miss, never on the first, and a healthy answer in between starts the count again.

A real server answers the pings from a script, one answer per ping, and counts them: the ping
at which the event arrives is exact, whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from adclick_airflow.watchdog import FlaskDownTrigger

OK = (200, {"status": "ok", "airflow": {"reachable": True}})
MISS = (503, {"status": "unavailable"})


class ScriptedHealth:
    """Serves ``/health`` answers in order; counts every ping it answers."""

    def __init__(self, answers: list[tuple[int, dict]]) -> None:
        self.answers = list(answers)
        self.pings = 0
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/health"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _app(self, environ, start_response):
        with self._lock:
            status, body = self.answers[min(self.pings, len(self.answers) - 1)]
            self.pings += 1
        return Response(json.dumps(body), status=status, mimetype="application/json")(
            environ, start_response
        )

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def scripted() -> Iterator:
    servers: list[ScriptedHealth] = []

    def serve(answers: list[tuple[int, dict]]) -> ScriptedHealth:
        servers.append(ScriptedHealth(answers))
        return servers[-1]

    yield serve
    for server in servers:
        server.stop()


async def first_event(trigger: FlaskDownTrigger):
    events = trigger.run()
    try:
        return await asyncio.wait_for(anext(events), 60)
    finally:
        await events.aclose()


def test_it_fires_on_the_second_miss_in_a_row_not_the_first(scripted) -> None:
    health = scripted([MISS, MISS, OK])

    event = asyncio.run(first_event(FlaskDownTrigger(url=health.url, interval=0.01, failures=2)))

    assert health.pings == 2
    assert event.xcoms["return_value"] == {"url": health.url, "error": "HTTP 503", "status": 503}


def test_a_healthy_answer_between_misses_starts_the_count_again(scripted) -> None:
    health = scripted([MISS, OK, MISS, OK, OK, MISS, MISS, MISS])

    event = asyncio.run(first_event(FlaskDownTrigger(url=health.url, interval=0.01, failures=2)))

    assert health.pings == 7, "fires at the first two misses in a row: pings 6 and 7"
    assert event.xcoms["return_value"]["status"] == 503


def test_the_miss_count_is_the_configured_one(scripted) -> None:
    health = scripted([MISS, MISS, MISS, MISS, MISS])

    asyncio.run(first_event(FlaskDownTrigger(url=health.url, interval=0.01, failures=4)))

    assert health.pings == 4
