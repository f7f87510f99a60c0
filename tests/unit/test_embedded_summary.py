"""The summary `python -m embedded` prints after its training run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedded.__main__ import summary
from embedded.stack import EmbeddedStack

RUN = {"dag_run_id": "manual__1", "state": "success"}
RESULT = {"metrics": {"accuracy": 0.95}, "version": "v1", "promoted": True, "model_path": "/m"}


@pytest.fixture
def stack(tmp_path: Path) -> EmbeddedStack:
    return EmbeddedStack(home=tmp_path / "airflow")


def body(text: str) -> list[str]:
    """The lines between the two rules."""
    lines = text.splitlines()
    first, last = (i for i, line in enumerate(lines) if line.startswith("===="))
    return lines[first + 1 : last]


def test_without_a_monitor_run_there_is_no_line_for_it_and_no_gap(stack: EmbeddedStack) -> None:
    lines = body(summary(stack, {"run": RUN, "result": RESULT, "monitor": None}))

    assert not any(line.startswith("Monitor run") for line in lines)
    mail = next(i for i, line in enumerate(lines) if line.startswith("Mail"))
    assert lines[mail - 1].startswith("Model file")


def test_with_a_monitor_run_it_is_named(stack: EmbeddedStack) -> None:
    monitor = {"dag_run_id": "manual__2", "state": "success"}
    lines = body(summary(stack, {"run": RUN, "result": RESULT, "monitor": monitor}))

    model_file = next(i for i, line in enumerate(lines) if line.startswith("Model file"))
    assert lines[model_file + 1] == "Monitor run    manual__2: success"


def test_the_mlflow_ui_run_and_model_version_are_named(stack: EmbeddedStack) -> None:
    tracked = {
        "run_id": "abc",
        "run_url": "http://127.0.0.1:5001/#/experiments/1/runs/abc",
        "model_name": "adclick",
        "model_version": "7",
        "passed": True,
    }
    result = {**RESULT, "mlflow": tracked}
    lines = body(summary(stack, {"run": RUN, "result": result, "monitor": None}))

    assert f"MLflow run     {tracked['run_url']}" in lines
    assert "MLflow model   adclick version 7 (champion)" in lines
    assert f"MLflow UI      {stack.mlflow_url}  (runs, models, the champion alias)" in lines
    accounts = stack.mlflow_server.accounts_file
    assert f"MLflow logins  in {accounts} (reader: read-only)" in lines
    assert stack.env["MLFLOW_TRACKING_URI"] == stack.mlflow_url == "http://127.0.0.1:5001"


def test_no_password_is_printed_only_where_they_are_kept(stack: EmbeddedStack) -> None:
    """A summary lands in terminal captures and logs (a 0644 log held the admin password)."""
    text = summary(stack, {"run": RUN, "result": RESULT, "monitor": None})

    for secret in stack.secrets.values():
        assert secret not in text
    assert f"Passwords      in {stack.secrets_path} (readable by you alone)" in body(text)
    assert stack.secrets_path.stat().st_mode & 0o777 == 0o600
    kept = json.loads(stack.secrets_path.read_text())
    assert kept["admin_password"] == stack.admin.password
    assert kept["viewer_password"] == stack.viewer.password
