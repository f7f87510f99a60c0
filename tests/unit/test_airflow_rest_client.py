"""The REST client when Airflow is not there or not Airflow: clear, typed, prompt errors.

The behaviour against a real api-server (login, token reuse, 403s, runs, XCom) is tested in
tests/monitor/test_airflow_rest_live.py on the embedded stack.
"""

from __future__ import annotations

import pytest

from airflow_rest import AirflowClient, AirflowError, AirflowUnreachable
from testkit.faults import FlakyAirflow
from testkit.ports import free_port
from testkit.rest import CountingClient

CALLS = {
    "latest_run": lambda c: c.latest_run("ad_click_training"),
    "get_run": lambda c: c.get_run("ad_click_training", "manual__1"),
    "task_instances": lambda c: c.task_instances("ad_click_training", "manual__1"),
    "xcom": lambda c: c.xcom("ad_click_training", "manual__1", "load_model"),
    "trigger": lambda c: c.trigger("ad_click_training", {"a": 1}),
    "set_paused": lambda c: c.set_paused("ad_click_training", True),
    "wait_for_run": lambda c: c.wait_for_run("ad_click_training", "manual__1", timeout=5),
    "health": lambda c: c.health(),
}


@pytest.mark.parametrize("call", CALLS)
def test_closed_port_is_unreachable_with_the_url(call: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = CountingClient(url, "monitor", "pw")

    with pytest.raises(AirflowUnreachable) as caught:
        CALLS[call](client)

    assert str(caught.value) == f"airflow unreachable at {url}: connection refused"
    assert client.logins == 0


def test_silent_server_times_out_as_unreachable(fault_server) -> None:
    silent = fault_server("silent")
    client = AirflowClient(silent.url, "monitor", "pw", timeout=0.2)

    with pytest.raises(AirflowUnreachable, match=r"no answer within 0\.2 s"):
        client.latest_run("ad_click_training")
    with pytest.raises(AirflowUnreachable, match=r"no answer within 0\.1 s"):
        client.health(timeout=0.1)


def test_unknown_host_is_unreachable() -> None:
    client = AirflowClient("http://airflow-host.invalid:8080", "monitor", "pw", timeout=2)

    with pytest.raises(AirflowUnreachable, match=r"airflow-host\.invalid:8080: host name not"):
        client.latest_run("ad_click_training")


def test_a_server_that_is_not_airflow_is_an_error_not_a_crash(fault_server) -> None:
    html = fault_server("html")
    client = AirflowClient(html.url, "monitor", "pw")

    with pytest.raises(AirflowError, match=r"not JSON; is http://\S+ an Airflow") as caught:
        client.latest_run("ad_click_training")
    assert not isinstance(caught.value, AirflowUnreachable)
    with pytest.raises(AirflowError, match="not JSON"):
        client.health()


def test_the_password_is_not_in_repr_or_errors() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = AirflowClient(url, "monitor", "s3cret-pw")

    with pytest.raises(AirflowUnreachable) as caught:
        client.latest_run("ad_click_training")

    assert "s3cret-pw" not in repr(client) and "s3cret-pw" not in str(caught.value)


@pytest.fixture
def flaky():
    server = FlakyAirflow()
    yield server
    server.stop()


def test_a_transient_500_is_retried_for_reads_and_idempotent_writes(flaky) -> None:
    client = AirflowClient(flaky.url, "admin", "pw", retry_backoff=0.01)

    assert client.set_paused("ad_click_training", False) == {"is_paused": False}
    assert client.runs("ad_click_training") == []
    patches = [call for call in flaky.calls if call[0] == "PATCH"]
    assert len(patches) == 2


def test_a_retried_trigger_returns_the_run_its_first_try_created(flaky) -> None:
    client = AirflowClient(flaky.url, "admin", "pw", retry_backoff=0.01)

    run = client.trigger("ad_click_training", {"data_path": "a.csv"})

    assert run["conf"] == {"data_path": "a.csv"}
    assert list(flaky.runs) == [run["dag_run_id"]]  # one run, not two


def test_retries_give_up_with_the_servers_answer(flaky) -> None:
    client = AirflowClient(flaky.url, "admin", "pw", retries=0)

    with pytest.raises(AirflowError, match=r"HTTP 500.*Database error"):
        client.set_paused("ad_click_training", True)
