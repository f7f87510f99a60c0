"""The maintenance DAG on the real embedded stack: an old training run's working directory,
task logs, superseded model version and metadata rows go; a recent run, its logs, the current
model's bytes and the Flask pages stay.

The old run is a real run aged the way time ages it: its files' times moved back with
``os.utime``, its recorded times moved back in its metadata and in the metadata database.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from adclick.registry import METADATA_FILE, ModelRegistry
from adclick_airflow import settings
from airflow_rest import AirflowClient, AirflowNotFound
from embedded.stack import EmbeddedStack
from testkit.files import snapshot
from testkit.flask_service import served_monitor
from testkit.tasks import task_states

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

TRAINING = settings.TRAINING_DAG_ID
MAINTENANCE = settings.MAINTENANCE_DAG_ID
AGE = timedelta(days=400)  # beyond every default window


def admin(stack: EmbeddedStack) -> AirflowClient:
    """An admin client with patience: the test waits through a slow api-server."""
    return stack.client(timeout=60.0)


def train(stack: EmbeddedStack) -> dict:
    client = admin(stack)
    run = client.trigger(TRAINING, {})
    run = client.wait_for_run(TRAINING, run["dag_run_id"], timeout=300)
    assert run["state"] == "success", run
    return {**run, "result": client.xcom(TRAINING, run["dag_run_id"], settings.RESULT_TASK_ID)}


def run_logs(stack: EmbeddedStack, run_id: str) -> Path:
    return stack.log_dir / f"dag_id={TRAINING}" / f"run_id={run_id}"


def age_tree(path: Path) -> None:
    stamp = (datetime.now(UTC) - AGE).timestamp()
    for directory, _dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.utime(Path(directory) / name, (stamp, stamp))
        os.utime(directory, (stamp, stamp))


def age_run(stack: EmbeddedStack, run: dict, workdir: Path) -> None:
    age_tree(workdir)
    age_tree(run_logs(stack, run["dag_run_id"]))
    metadata = stack.model_dir / "versions" / run["result"]["version"] / METADATA_FILE
    recorded = json.loads(metadata.read_text())
    recorded["created_at"] = (datetime.now(UTC) - AGE).isoformat()
    metadata.write_text(json.dumps(recorded))
    old = (datetime.now(UTC) - AGE).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(stack.home / "airflow.db", timeout=60) as db:
        changed = db.execute(
            "UPDATE dag_run SET start_date = ?, end_date = ?, queued_at = ?, run_after = ? "
            "WHERE dag_id = ? AND run_id = ?",
            (old, old, old, old, TRAINING, run["dag_run_id"]),
        ).rowcount
    assert changed == 1


@pytest.fixture
def workdir_of(embedded_stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ADCLICK_ARTIFACT_DIR", str(embedded_stack.artifact_dir))
    return lambda run: settings.run_workdir(TRAINING, run["dag_run_id"])


def test_maintenance_removes_old_items_and_keeps_recent_runs_and_the_current_model(
    embedded_stack: EmbeddedStack, workdir_of, tmp_path: Path
) -> None:
    old, recent = train(embedded_stack), train(embedded_stack)
    old_dir, recent_dir = workdir_of(old), workdir_of(recent)
    assert old_dir.is_dir() and run_logs(embedded_stack, old["dag_run_id"]).is_dir()
    age_run(embedded_stack, old, old_dir)
    registry = ModelRegistry(embedded_stack.model_dir)
    current = registry.current()
    assert current["version"] == recent["result"]["version"]
    kept = {
        "current model": snapshot(Path(current["path"]).parent),
        "current pointer": registry.current_file.read_bytes(),
        "recent run dir": snapshot(recent_dir),
        "recent logs": snapshot(run_logs(embedded_stack, recent["dag_run_id"])),
    }
    client = admin(embedded_stack)
    client.set_paused(MAINTENANCE, False)

    run = client.trigger(MAINTENANCE, {})
    run = client.wait_for_run(MAINTENANCE, run["dag_run_id"], timeout=300)

    states = task_states(client, MAINTENANCE, run["dag_run_id"])
    assert run["state"] == "success", states
    assert set(states.values()) == {"success"}, states
    reports = {
        task: client.xcom(MAINTENANCE, run["dag_run_id"], task)
        for task in ("remove_old_run_dirs", "remove_old_model_versions", "remove_old_task_logs")
    }
    # The old run's items are gone, and each report names them.
    assert not old_dir.exists()
    assert (
        str(old_dir.relative_to(embedded_stack.artifact_dir))
        in reports["remove_old_run_dirs"]["items"]
    )
    assert old["result"]["version"] not in registry.versions()
    assert f"versions/{old['result']['version']}" in reports["remove_old_model_versions"]["items"]
    assert not run_logs(embedded_stack, old["dag_run_id"]).exists()
    assert any(old["dag_run_id"] in item for item in reports["remove_old_task_logs"]["items"])
    with pytest.raises(AirflowNotFound):  # the old run's metadata rows are purged
        client.get_run(TRAINING, old["dag_run_id"])
    # The recent run, its logs and the current model are untouched.
    assert {
        "current model": snapshot(Path(current["path"]).parent),
        "current pointer": registry.current_file.read_bytes(),
        "recent run dir": snapshot(recent_dir),
        "recent logs": snapshot(run_logs(embedded_stack, recent["dag_run_id"])),
    } == kept
    assert task_states(client, TRAINING, recent["dag_run_id"])[settings.RESULT_TASK_ID] == "success"
    with served_monitor(embedded_stack, tmp_path, MONITOR_AIRFLOW_TIMEOUT="30") as monitor:
        page = requests.get(f"{monitor}/api", timeout=120)
        status = requests.get(f"{monitor}/api/status", timeout=120).json()
    assert page.status_code == 200 and page.url.endswith("/success")
    assert recent["dag_run_id"] in page.text
    assert status["state"] == "success" and status["run_id"] == recent["dag_run_id"]
