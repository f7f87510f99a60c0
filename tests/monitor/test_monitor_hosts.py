"""The monitor answers only the host names it is configured for: a page on another site that
rebinds its own name to 127.0.0.1 (DNS rebinding) gets 400, never the monitor's data.

No embedded stack needed: what is under test happens before any route reads Airflow.
"""

from __future__ import annotations

import pytest

from monitor import create_app

ROUTES = ("/health", "/api/status", "/api", "/metrics", "/history")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:5000", "localhost.attacker.example", "1.2.3.4"]
)
def test_another_host_name_gets_400(down_client, route: str, host: str) -> None:
    response = down_client.get(route, headers={"Host": host})

    assert response.status_code == 400
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert b"monitor" not in response.data.lower().replace(b"<title>", b"")
    assert b"airflow" not in response.data.lower()


@pytest.mark.parametrize(
    "host", ["127.0.0.1:5000", "localhost:5000", "localhost", "flask-monitor:5000"]
)
def test_the_names_both_stacks_use_are_answered(down_client, host: str) -> None:
    response = down_client.get("/health", headers={"Host": host})

    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_the_names_come_from_one_setting(make_down_app) -> None:
    client = make_down_app(TRUSTED_HOSTS="monitor.team.example, .internal.example").test_client()

    assert client.get("/health", headers={"Host": "monitor.team.example"}).status_code == 200
    assert client.get("/health", headers={"Host": "a.internal.example:80"}).status_code == 200
    assert client.get("/health", headers={"Host": "localhost"}).status_code == 400


def test_the_environment_sets_them(monkeypatch) -> None:
    monkeypatch.setenv("MONITOR_TRUSTED_HOSTS", "monitor.team.example")
    monkeypatch.setenv("MONITOR_AIRFLOW_PASSWORD", "x")
    client = create_app().test_client()

    assert client.get("/health", headers={"Host": "monitor.team.example"}).status_code == 200
    assert client.get("/health", headers={"Host": "127.0.0.1"}).status_code == 400


def test_an_empty_list_is_refused_with_its_name(make_down_app) -> None:
    with pytest.raises(ValueError, match="MONITOR_TRUSTED_HOSTS"):
        make_down_app(TRUSTED_HOSTS=" , ")
