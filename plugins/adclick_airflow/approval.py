"""A person's sign-off on a promotion, through Airflow's own ``ApprovalOperator``.

The operator waits in the task state ``awaiting_input``, which holds no worker slot: the
scheduler resumes it when someone answers (in the UI's "Required actions", or through
``PATCH .../hitlDetails``) or when the timeout passes, which answers "Reject" for nobody.
What it asks and whether it asks at all come from the model ``load_model`` left waiting in
the run's working directory (:mod:`adclick.approval`); what the answer changes is done by
the tasks after it (:func:`adclick.steps.settle_approval`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk.bases.notifier import BaseNotifier
from airflow.sdk.exceptions import AirflowSkipException

from adclick import approval
from adclick.workdir import REGISTERED_RECORD, read_record
from adclick_airflow import mail, notify, settings


def waiting_result(dag_id: str, run_id: str) -> dict[str, Any]:
    """What ``load_model`` recorded in the run's working directory."""
    return read_record(settings.run_workdir(dag_id, run_id), REGISTERED_RECORD)


class ApprovalRequestMail(BaseNotifier):
    """Mails the alert recipients when a model starts waiting: the comparison and the link to
    answer in the Airflow UI (``[api] base_url``)."""

    def notify(self, context: Any) -> None:
        ti = context["ti"]
        result = waiting_result(ti.dag_id, ti.run_id)
        answer_url = HITLOperator.generate_link_to_ui_from_context(context=context)
        notify.send_quietly(
            mail.approval_request(
                ti.dag_id, ti.run_id, result, notify.links(ti.dag_id, ti.run_id), answer_url
            )
        )


class PromotionApproval(ApprovalOperator):
    """Waits for "Approve" or "Reject" on the model this run left waiting; skips itself (and
    so the promotion after it) when the run needs no answer. No answer within the run's
    ``approval_timeout`` is "Reject" by nobody."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            subject="Promote the model?",  # replaced by the run's own when it starts waiting
            defaults=[ApprovalOperator.REJECT],
            notifiers=[ApprovalRequestMail()],
            response_timeout=timedelta(hours=approval.DEFAULT_TIMEOUT_HOURS),
            **kwargs,
        )

    def execute(self, context: Any) -> Any:
        ti = context["ti"]
        result = waiting_result(ti.dag_id, ti.run_id)
        if not approval.awaits(result):
            raise AirflowSkipException("no model of this run waits for an approval")
        tracked = result.get("mlflow") or {}
        self.subject, self.body = approval.request(
            result,
            settings.monitor_run_url(ti.run_id, ti.dag_id),
            tracked.get("version_url"),
        )
        self.response_timeout = timedelta(hours=result["approval"]["timeout_hours"])
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        # On "Reject" the operator skips the task after it by raising (Airflow 3's SkipMixin),
        # so its return value never reaches XCom: the answer is pushed first, for
        # record_approval to settle.
        answer = HITLOperator.execute_complete(self, context, event)
        context["ti"].xcom_push(key="return_value", value=answer)
        return super().execute_complete(context, event)


def answer_of(response: dict[str, Any] | None) -> dict[str, Any] | None:
    """The operator's result as :func:`adclick.steps.settle_approval` takes it
    (``approved``, ``by``, ``at``); None when nobody was asked."""
    if not response:
        return None
    user = response.get("responded_by_user") or {}
    at = response.get("responded_at")
    return {
        "approved": ApprovalOperator.APPROVE in (response.get("chosen_options") or []),
        "by": (user.get("name") or user.get("id")) if isinstance(user, dict) else str(user),
        "at": at.isoformat() if at is not None and hasattr(at, "isoformat") else at,
    }
