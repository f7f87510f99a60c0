"""The watchdog's trigger, run the way the triggerer runs it: an async generator of events."""

from __future__ import annotations

import asyncio
import threading

from airflow.triggers.base import TaskSuccessEvent
from werkzeug.serving import make_server

from adclick_airflow.watchdog import TRIGGER_PATH, FlaskDownTrigger
from flask_launcher.health import FOREIGN
from monitor import create_app
from testkit.faults import FaultServer
from testkit.flask_service import impostor
from testkit.ports import free_port


async def first_event(trigger: FlaskDownTrigger, timeout: float):
    events = trigger.run()
    try:
        return await asyncio.wait_for(anext(events), timeout)
    finally:
        await events.aclose()


def test_it_round_trips_through_serialization() -> None:
    trigger = FlaskDownTrigger(url="http://flask:5000/health", interval=0.5, failures=3)

    path, kwargs = trigger.serialize()

    assert path == TRIGGER_PATH
    assert FlaskDownTrigger(**kwargs).serialize() == (path, kwargs)


def test_it_fires_once_the_service_misses_enough_pings() -> None:
    url = f"http://127.0.0.1:{free_port()}/health"  # nothing listens
    trigger = FlaskDownTrigger(url=url, interval=0.05, failures=3)

    event = asyncio.run(first_event(trigger, timeout=10))

    assert isinstance(event, TaskSuccessEvent)
    assert event.xcoms["return_value"] == {
        "url": url,
        "error": "connection refused",
        "status": None,
    }


def test_it_keeps_waiting_while_the_service_answers_then_fires_when_it_stops() -> None:
    app = create_app({"AIRFLOW_URL": f"http://127.0.0.1:{free_port()}", "AIRFLOW_PASSWORD": "x"})
    pings = threading.Semaphore(0)

    def counted(environ, start_response):
        try:
            return app(environ, start_response)
        finally:
            pings.release()

    server = make_server("127.0.0.1", 0, counted, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trigger = FlaskDownTrigger(
        url=f"http://127.0.0.1:{server.server_port}/health", interval=0.05, failures=2
    )

    def answered(count: int) -> bool:
        return all(pings.acquire(timeout=30) for _ in range(count))

    async def scenario():
        waiting = asyncio.ensure_future(first_event(trigger, timeout=60))
        assert await asyncio.to_thread(answered, 10), "the service answered 10 pings"
        assert not waiting.done(), "healthy answers must not end the wait"
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        return await waiting

    event = asyncio.run(scenario())

    assert event.xcoms["return_value"]["error"] == "connection refused"


def test_a_port_answering_something_else_counts_as_down() -> None:
    other = FaultServer("html")
    try:
        trigger = FlaskDownTrigger(url=f"{other.url}/health", interval=0.05, failures=2)
        event = asyncio.run(first_event(trigger, timeout=10))
    finally:
        other.stop()

    assert event.xcoms["return_value"]["status"] == 200


def test_it_fires_when_another_program_answers_in_the_service_s_place(
    tmp_path, monkeypatch
) -> None:
    """The process launcher started the service with a key; the program now on its port
    answers like the monitor but cannot prove the key: down."""
    port = free_port()
    pidfile = tmp_path / "flask-monitor.pid"
    pidfile.with_name(pidfile.name + ".key").write_text("the launch's key")
    monkeypatch.setenv("FLASK_LAUNCHER", "process")
    monkeypatch.setenv("FLASK_MONITOR_PIDFILE", str(pidfile))
    url = f"http://127.0.0.1:{port}/health"
    trigger = FlaskDownTrigger(url=url, interval=0.05, failures=2)

    with impostor(port, {"status": "ok", "airflow": {"reachable": True}}):
        event = asyncio.run(first_event(trigger, timeout=10))

    assert event.xcoms["return_value"] == {"url": url, "error": FOREIGN, "status": 200}
