"""A person's sign-off through REST API v2, in either stack: wait until a run's approval waits,
then answer it as some account."""

from __future__ import annotations

from urllib.parse import quote

from adclick_contract import APPROVAL_TASK_ID, AWAITING_INPUT_STATE
from airflow_rest import TERMINAL_STATES, AirflowClient
from testkit.tasks import task_states
from testkit.waiting import wait_until


def waiting_or_ended(client: AirflowClient, dag_id: str, run_id: str, timeout: float) -> str:
    """``"waits"`` once the run's approval waits for an answer, ``"ended"`` if the run ended
    first."""

    def look() -> str | None:
        if client.get_run(dag_id, run_id)["state"] in TERMINAL_STATES:
            return "ended"
        states = task_states(client, dag_id, run_id)
        return "waits" if states.get(APPROVAL_TASK_ID) == AWAITING_INPUT_STATE else None

    return wait_until(look, timeout, "the approval to wait", poll=0.5)


def answer(client: AirflowClient, dag_id: str, run_id: str, option: str, timeout: float) -> object:
    """Answer the run's approval (``Approve`` or ``Reject``) as ``client``'s user."""
    path = (
        f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
        f"{APPROVAL_TASK_ID}/-1/hitlDetails"
    )
    body = {"chosen_options": [option], "params_input": {}}
    return client.request("PATCH", path, json=body, timeout=timeout)
