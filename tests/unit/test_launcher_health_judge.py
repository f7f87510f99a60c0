"""Healthy means the monitor's own answer: HTTP 200 whose JSON says ``"status": "ok"``. Any
other JSON 200 (Airflow's own health document, a half-started app, a proxy's JSON page) is
not healthy, for the blocking ping and the triggerer's async ping alike."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from flask_launcher import check_health, check_health_async
from flask_launcher.health import judge

NOT_OURS = "HTTP 200 but not the monitor's health answer"
AIRFLOW_HEALTH = {
    "metadatabase": {"status": "healthy"},
    "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": None},
}


@pytest.mark.parametrize(
    "body",
    [
        {"status": "starting"},
        {"status": "OK"},
        {"status": None},
        {"healthy": True},
        AIRFLOW_HEALTH,
        ["status", "ok"],
        "ok",
        {},
    ],
    ids=repr,
)
def test_a_json_200_that_is_not_status_ok_is_not_healthy(body) -> None:
    result = judge(200, json.dumps(body).encode())

    assert result["healthy"] is False and result["error"] == NOT_OURS
    assert result["body"] == body


def test_status_ok_with_a_non_200_code_is_not_healthy() -> None:
    result = judge(500, b'{"status": "ok"}')

    assert result["healthy"] is False and result["error"] == "HTTP 500"


def test_the_monitors_own_answer_is_healthy() -> None:
    result = judge(200, b'{"status": "ok", "airflow": {"reachable": false}}')

    assert result == {
        "healthy": True,
        "status": 200,
        "error": None,
        "body": {"status": "ok", "airflow": {"reachable": False}},
    }


@pytest.fixture
def airflow_health_url() -> Iterator[str]:
    """A real server answering /health the way Airflow's api-server answers its own."""
    body = json.dumps(AIRFLOW_HEALTH)
    server = make_server(
        "127.0.0.1", 0, lambda env, start: Response(body, mimetype="application/json")(env, start)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/health"
    server.shutdown()


@pytest.mark.parametrize("mode", ["blocking", "async"])
def test_both_pings_refuse_another_services_json_200(airflow_health_url: str, mode: str) -> None:
    if mode == "blocking":
        result = check_health(airflow_health_url)
    else:
        result = asyncio.run(check_health_async(airflow_health_url))

    assert result["status"] == 200 and result["healthy"] is False
