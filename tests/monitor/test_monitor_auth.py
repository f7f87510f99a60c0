"""The monitor with credentials Airflow refuses: a 503 that names the user, no stack trace."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_wrong_password_names_the_cause(embedded_stack, make_app) -> None:
    client = make_app(AIRFLOW_PASSWORD="not-the-password").test_client()

    response = client.get("/api/status")

    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "airflow_auth_failed"
    assert body["message"].startswith(
        f"authentication failed for user {embedded_stack.viewer.username} at "
        f"{embedded_stack.api_url}: HTTP 401"
    )
    assert "not-the-password" not in body["message"]
    page = client.get("/api")
    html = page.get_data(as_text=True)
    assert page.status_code == 503 and "refused the monitor's login" in html
    assert "Traceback" not in html and "not-the-password" not in html


def test_health_stays_200_with_wrong_password(make_app) -> None:
    client = make_app(AIRFLOW_PASSWORD="not-the-password").test_client()

    body = client.get("/health").get_json()

    assert body["status"] == "ok" and body["airflow"]["reachable"] is True
