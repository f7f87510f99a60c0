"""The maintenance DAG in the Compose stack: on the Celery worker, through the log volume,
the object store and Postgres, it removes an old task log and an old run's metadata rows,
leaves recent ones alone, and sweeps the run directories and model versions in the bucket.

Old items are aged inside the stack the way time ages them: file times moved back with
``touch -d``, a run's recorded times moved back in Postgres. Objects cannot be back-dated:
ageing of run directories and versions in a bucket is tested against a real store with a
moved clock (tests/integration/test_object_storage.py).
"""

from __future__ import annotations

import pytest

from adclick_airflow.settings import MAINTENANCE_DAG_ID
from airflow_rest import AirflowClient, AirflowNotFound
from testkit.compose import BUCKET, ComposeStack, docker
from testkit.tasks import task_states

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

MAINTENANCE = MAINTENANCE_DAG_ID
TASKS = {"remove_old_run_dirs", "remove_old_model_versions", "remove_old_task_logs"}
OLD_LOG = "/opt/airflow/logs/dag_id=ad_click_training/run_id=manual__aged_by_the_test/x.log"
RECENT_LOG = "/opt/airflow/logs/dag_id=ad_click_training/run_id=manual__recent_by_the_test/x.log"


def in_worker(stack: ComposeStack, script: str) -> str:
    return docker("exec", stack.container_id("airflow-worker"), "sh", "-c", script)


def maintenance_run(admin: AirflowClient) -> dict:
    run = admin.trigger(MAINTENANCE, {})
    run = admin.wait_for_run(MAINTENANCE, run["dag_run_id"], timeout=420)
    states = task_states(admin, MAINTENANCE, run["dag_run_id"])
    assert run["state"] == "success", states
    assert set(states.values()) == {"success"}, "nothing skipped: the metadata clean ran too"
    return run


def test_maintenance_removes_old_items_in_the_compose_stack(stack: ComposeStack) -> None:
    admin = stack.api("admin")
    admin.set_paused(MAINTENANCE, False)
    first = maintenance_run(admin)
    age_400_days = 'touch -h -d "@$(( $(date +%s) - 400 * 86400 ))"'
    in_worker(
        stack,
        f"mkdir -p $(dirname {OLD_LOG}) $(dirname {RECENT_LOG}) && "
        f"echo old > {OLD_LOG} && echo recent > {RECENT_LOG} && {age_400_days} {OLD_LOG}",
    )
    docker(
        "exec",
        stack.container_id("postgres"),
        "psql",
        "-U",
        "airflow",
        "-d",
        "airflow",
        "-c",
        "UPDATE dag_run SET start_date = now() - interval '400 days', "
        "end_date = now() - interval '400 days' "
        f"WHERE dag_id = '{MAINTENANCE}' AND run_id = '{first['dag_run_id']}'",
    )

    second = maintenance_run(admin)

    reports = {task: admin.xcom(MAINTENANCE, second["dag_run_id"], task) for task in TASKS}
    for task in ("remove_old_run_dirs", "remove_old_model_versions"):
        assert reports[task]["root"].startswith(f"s3://{BUCKET}/"), reports[task]
        assert reports[task]["errors"] == [], reports[task]
    assert any("aged_by_the_test" in item for item in reports["remove_old_task_logs"]["items"])
    left = in_worker(stack, f"ls -d {OLD_LOG} {RECENT_LOG} 2>/dev/null; true")
    assert left.split() == [RECENT_LOG]
    with pytest.raises(AirflowNotFound):  # the aged run's metadata rows are purged
        admin.get_run(MAINTENANCE, first["dag_run_id"])
    assert admin.get_run(MAINTENANCE, second["dag_run_id"])["state"] == "success"
