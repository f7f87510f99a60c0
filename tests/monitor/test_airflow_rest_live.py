"""The REST client against the real api-server: tokens, roles, runs, XCom, errors."""

from __future__ import annotations

import time

import pytest
import requests

from airflow_rest import AirflowAuthError, AirflowClient, AirflowNotFound
from airflow_rest.token import renew_at
from testkit.rest import CountingClient
from testkit.runs import TRAINING, finished_run
from testkit.waiting import wait_until

pytestmark = pytest.mark.integration


def viewer_client(stack) -> CountingClient:
    return CountingClient(stack.api_url, stack.viewer.username, stack.viewer.password)


def status_with(stack, token: str) -> int:
    """What the api-server answers to a raw request with this token."""
    return requests.get(
        f"{stack.api_url}/api/v2/dags?limit=1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).status_code


def test_one_login_serves_many_requests(embedded_stack) -> None:
    client = viewer_client(embedded_stack)

    for _ in range(5):
        client.latest_run(TRAINING)
    client.dag_exists(TRAINING)

    assert client.logins == 1


def test_a_revoked_token_is_replaced_by_one_new_login(embedded_stack) -> None:
    client = viewer_client(embedded_stack)
    client.latest_run(TRAINING)
    token = client._token
    # Logging out revokes the token server-side; Airflow then answers 403 "Invalid JWT token".
    requests.get(
        f"{embedded_stack.api_url}/api/v2/auth/logout",
        headers={"Authorization": f"Bearer {token}"},
        allow_redirects=False,
        timeout=10,
    )
    assert status_with(embedded_stack, token) == 403

    client.latest_run(TRAINING)

    assert client.logins == 2 and client._token != token


def test_expired_tokens_are_renewed(embedded_stack) -> None:
    lifetime = float(embedded_stack.env.get("AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME", 86400))
    if lifetime > 60:
        pytest.skip(f"tokens live {lifetime:.0f} s in this stack: too long to wait for")
    ahead = viewer_client(embedded_stack)  # renews from the token's exp claim
    on_401 = viewer_client(embedded_stack)  # as if the token's exp could not be read
    ahead.latest_run(TRAINING)
    on_401.latest_run(TRAINING)
    on_401._renew_at = None
    first, old = ahead._token, on_401._token

    wait_until(lambda: time.time() > renew_at(first), lifetime, "the renewal time", poll=0.5)
    ahead.latest_run(TRAINING)
    # Renewed ahead of time: the first token was still good, no 401 was needed.
    assert ahead.logins == 2 and status_with(embedded_stack, first) == 200

    def old_token_refused() -> bool:
        return status_with(embedded_stack, old) == 401

    # Plus Airflow's leeway (10 s by default).
    wait_until(old_token_refused, lifetime + 60, "the old token to expire", poll=1)
    on_401.latest_run(TRAINING)
    assert on_401.logins == 2


def test_wrong_password_is_an_auth_error_naming_the_user(embedded_stack) -> None:
    client = AirflowClient(embedded_stack.api_url, embedded_stack.viewer.username, "Pa55-not-it")

    with pytest.raises(AirflowAuthError) as caught:
        client.latest_run(TRAINING)

    message = str(caught.value)
    assert message.startswith(f"authentication failed for user {embedded_stack.viewer.username}")
    assert "HTTP 401" in message and "Pa55-not-it" not in message


def test_viewer_may_read_but_not_trigger_or_pause(embedded_stack) -> None:
    viewer = viewer_client(embedded_stack)

    viewer.latest_run(TRAINING)
    with pytest.raises(AirflowAuthError, match="HTTP 403 for user monitor: Forbidden"):
        viewer.trigger(TRAINING, {})
    with pytest.raises(AirflowAuthError, match="HTTP 403 for user monitor: Forbidden"):
        viewer.set_paused(TRAINING, True)
    assert viewer.logins == 1  # a plain 403 is not a token problem: no re-login


def test_run_tasks_and_model_result(embedded_stack) -> None:
    run = finished_run(embedded_stack)
    viewer = embedded_stack.client("viewer")

    assert viewer.get_run(TRAINING, run["dag_run_id"])["state"] == "success"
    assert viewer.latest_run(TRAINING)["dag_run_id"] == run["dag_run_id"]
    tasks = viewer.task_instances(TRAINING, run["dag_run_id"])
    assert {t["task_id"] for t in tasks} >= {"load_data", "build_model", "load_model"}
    result = viewer.xcom(TRAINING, run["dag_run_id"], "load_model")
    assert result["promoted"] is True and 0.9 <= result["metrics"]["accuracy"] <= 1
    assert viewer.xcom(TRAINING, run["dag_run_id"], "load_model", key="nothing") is None


def test_missing_run_is_not_found(embedded_stack) -> None:
    with pytest.raises(AirflowNotFound, match="not found"):
        embedded_stack.client("viewer").get_run(TRAINING, "manual__no-such-run")


def test_health_needs_no_login(embedded_stack) -> None:
    client = CountingClient(embedded_stack.api_url, "nobody", "nothing")

    health = client.health()

    assert health["metadatabase"]["status"] == "healthy"
    assert health["scheduler"]["status"] == "healthy"
    assert client.logins == 0
