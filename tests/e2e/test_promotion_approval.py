"""A person's sign-off in the Compose stack (after the other tests made a champion): a run
with ``require_approval`` waits for an answer on the triggerer and mails the request; the
read-only ``monitor`` account's answer is refused (403); the ``approver``'s "Reject" keeps the
champion: the run succeeds, says who rejected it, and the bucket's current model stays."""

from __future__ import annotations

import pytest

from adclick.registry import CURRENT_FILE
from adclick_airflow.settings import SETTLED_RESULT_TASK_ID
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from airflow_rest import AirflowAuthError
from testkit.approval import answer, waiting_or_ended
from testkit.compose import API_TIMEOUT_S, BUCKET, ComposeStack
from testkit.mailbox import Mailbox
from testkit.tasks import task_states

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

RUN_TIMEOUT_S = 420


def test_a_rejected_model_waits_for_the_approver_and_keeps_the_champion(
    stack: ComposeStack, mail: Mailbox
) -> None:
    admin = stack.api("admin")
    admin.set_paused(TRAINING, False)
    current = f"{BUCKET}/model/{CURRENT_FILE}"
    fs = stack.objects()
    champion = fs.cat(current) if fs.exists(current) else None  # None: run alone

    run_id = admin.trigger(TRAINING, {"require_approval": True})["dag_run_id"]

    assert waiting_or_ended(admin, TRAINING, run_id, RUN_TIMEOUT_S) == "waits"
    mail.wait_for(lambda m: "approval needed" in m["Subject"] and run_id in m["Subject"])
    with pytest.raises(AirflowAuthError, match="403"):
        answer(stack.api("viewer"), TRAINING, run_id, "Approve", API_TIMEOUT_S)
    answer(stack.api("approver"), TRAINING, run_id, "Reject", API_TIMEOUT_S)
    run = admin.wait_for_run(TRAINING, run_id, timeout=RUN_TIMEOUT_S)
    assert run["state"] == "success", task_states(admin, TRAINING, run_id)
    result = admin.xcom(TRAINING, run_id, SETTLED_RESULT_TASK_ID)
    assert result["promoted"] is False
    assert result["approval"]["state"] == "rejected" and result["approval"]["by"] == "approver"
    fs.invalidate_cache()
    assert (fs.cat(current) if fs.exists(current) else None) == champion
    report = mail.wait_for(lambda m: run_id in m["Subject"] and "not promoted" in m["Subject"])
    assert "rejected: champion kept by approver" in report["Text"]
