"""A person's sign-off with a fixture model: a promotable model waits registered but not
current; approved it becomes current, rejected or timed out the champion stays; each answer
is recorded in the version's metadata and the run's result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import result_views
from adclick import approval, contract, steps
from adclick.registry import METADATA_FILE, VERSIONS_DIR, ModelRegistry
from adclick.workdir import REGISTERED_RECORD
from testkit import fixture_models

NAME = "iris"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixture_models.export_csv(NAME, tmp_path_factory.mktemp("data"))


def registered(data: Path, folder: Path, run: str, **options: object) -> tuple[Path, dict]:
    """The steps up to ``register_model``, as the DAG runs them, in ``folder/runs/run``."""
    spec = contract.load_module(fixture_models.module(NAME))
    workdir = folder / "runs" / run
    workdir.mkdir(parents=True)
    steps.ingest_csv(data, workdir, spec)
    steps.preprocess(workdir, spec)
    steps.split_holdout(workdir, spec)
    steps.fit_and_score(workdir, spec)
    result = steps.register_model(workdir, folder / "model", spec, spec.gate, run, **options)
    return workdir, result


def stored_approval(folder: Path, version: str) -> dict | None:
    metadata = folder / "model" / VERSIONS_DIR / version / METADATA_FILE
    return json.loads(metadata.read_text()).get("approval")


def test_a_promotable_model_waits_and_moves_only_once_approved(data: Path, tmp_path: Path) -> None:
    workdir, waiting = registered(
        data, tmp_path, "first", require_approval=True, approval_timeout_hours=2
    )
    registry = ModelRegistry(tmp_path / "model")
    assert waiting["promoted"] is False and approval.awaits(waiting)
    assert waiting["approval"] == approval.pending(2)
    assert registry.current() is None, "nothing moves before the answer"
    assert stored_approval(tmp_path, waiting["version"])["state"] == approval.AWAITING
    subject, body = approval.request(waiting, "http://monitor/run", "http://mlflow/v1")
    assert waiting["version"] in subject and "Champion: none yet" in body
    metric = waiting["gate"]["metric"]
    assert f"{metric} **{waiting['metrics'][metric]:.4f}**" in body
    assert "(http://monitor/run)" in body and "(http://mlflow/v1)" in body and "2 h" in body

    settled = steps.settle_approval(
        workdir, tmp_path / "model", approved=True, by="approver", at="2026-01-01T00:00:00Z"
    )

    assert settled["promoted"] is True and settled["approval"]["state"] == approval.APPROVED
    assert settled["approval"]["by"] == "approver"
    assert registry.current()["version"] == waiting["version"]
    assert stored_approval(tmp_path, waiting["version"]) == settled["approval"]
    assert json.loads((workdir / REGISTERED_RECORD).read_text()) == settled
    again = steps.settle_approval(workdir, tmp_path / "model", approved=False, by="x", at=None)
    assert again == settled, "a settled run is not settled twice"


@pytest.mark.parametrize(
    ("by", "state", "line"),
    [
        ("approver", approval.REJECTED, "rejected: champion kept by approver"),
        (None, approval.TIMED_OUT, "no answer in time: champion kept (1 h)"),
    ],
)
def test_a_rejection_or_no_answer_keeps_the_champion(
    data: Path, tmp_path: Path, by: str | None, state: str, line: str
) -> None:
    _, champion = registered(data, tmp_path, "champion")
    workdir, waiting = registered(
        data, tmp_path, "challenger", require_approval=True, approval_timeout_hours=1
    )
    assert champion["promoted"] is True and "approval" not in champion
    assert waiting["promotion"]["champion_version"] == champion["version"]

    settled = steps.settle_approval(workdir, tmp_path / "model", approved=False, by=by, at=None)

    assert settled["promoted"] is False and settled["approval"]["state"] == state
    assert ModelRegistry(tmp_path / "model").current()["version"] == champion["version"]
    assert stored_approval(tmp_path, waiting["version"])["state"] == state
    assert result_views.approval_line(settled["approval"]).startswith(line)


def test_a_model_that_would_not_be_promoted_does_not_wait(data: Path, tmp_path: Path) -> None:
    registered(data, tmp_path, "champion")
    workdir, kept = registered(data, tmp_path, "margin", require_approval=True, min_improvement=0.5)
    assert kept["promotion"]["decision"] == "kept_champion" and "approval" not in kept
    assert (
        steps.settle_approval(workdir, tmp_path / "model", approved=True, by="a", at=None) == kept
    )
