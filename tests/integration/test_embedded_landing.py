"""Runs started by new data, on the real embedded stack, with the fixture model it deploys: an
asset event posted as docs/pipeline.md shows retrains on the file it names; the promotion it
makes starts scoring, which skips with an empty inbox; a batch landing in ``incoming/`` is
scored; a CSV landing in the data root trains on that file within 30 s, and its promotion
scores the newest batch again; the same bytes landing again start nothing.

The tests build on each other, in order. Every promotion here is a tie with the champion (the
same rows, the same parameters, deterministic), which promotes: that makes it certain."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pandas as pd
import pytest

from adclick import contract
from adclick.registry import ModelRegistry
from adclick_airflow.settings import RESULT_TASK_ID
from airflow_rest import AirflowClient
from embedded.stack import REPO_ROOT, EmbeddedStack
from testkit import fixture_models
from testkit.fixture_models import EMBEDDED as NAME
from testkit.landings import asset_runs, documented_example, next_asset_run, run_bash
from testkit.runs import RUN_TIMEOUT_S, patiently, unsuccessful
from testkit.waiting import wait_until

pytestmark = pytest.mark.integration

TRAINING, SCORING = f"{NAME}_training", f"{NAME}_scoring"
SPEC = contract.load_module(fixture_models.module(NAME))
LANDED_WITHIN_S = 30
# The stack's watcher looks every second (tests/conftest.py): ten looks at least.
QUIET_S = 10
ANSWER_S = 60


@pytest.fixture(scope="module")
def stack(embedded_stack: EmbeddedStack) -> Iterator[EmbeddedStack]:
    """The session's stack with the fixture model's DAGs unpaused, once its watchers have
    taken their first look (what is there then is no new data); paused again afterwards, so
    the other tests' promotions of the model start no scoring."""
    admin = client(embedded_stack)
    embedded_stack.wait_for_dags((TRAINING, SCORING))
    for dag_id in (TRAINING, SCORING):
        admin.set_paused(dag_id, False)
    registry = embedded_stack.model_dir / NAME
    wait_until(
        lambda: all(
            (registry / f"landed-{kind}.json").exists() for kind in ("training", "scoring")
        ),
        120,
        "the landing watchers' first look",
    )
    try:
        yield embedded_stack
    finally:
        for dag_id in (TRAINING, SCORING):
            admin.set_paused(dag_id, True)


def client(stack: EmbeddedStack) -> AirflowClient:
    """An admin client patient enough for a busy shared machine."""
    return stack.client(timeout=ANSWER_S)


def finished(stack: EmbeddedStack, dag_id: str, run: dict) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    return patiently(
        lambda: client(stack).wait_for_run(dag_id, run["dag_run_id"], RUN_TIMEOUT_S), deadline
    )


def why(stack: EmbeddedStack, dag_id: str, run: dict) -> str:
    return unsuccessful(client(stack), dag_id, run["dag_run_id"])


def states(stack: EmbeddedStack, dag_id: str, run: dict) -> dict[str, str]:
    instances = client(stack).task_instances(dag_id, run["dag_run_id"])
    return {ti["task_id"]: ti["state"] for ti in instances}


def trained_on(stack: EmbeddedStack, run: dict) -> str:
    return client(stack).xcom(TRAINING, run["dag_run_id"], "load_data")["source"]


def champion_version(stack: EmbeddedStack) -> str:
    return ModelRegistry(stack.model_dir / NAME).current()["version"]


def test_a_posted_asset_event_retrains_and_its_promotion_starts_scoring(
    stack: EmbeddedStack,
) -> None:
    admin = client(stack)
    trainings, scorings = asset_runs(admin, TRAINING), asset_runs(admin, SCORING)
    example = documented_example(
        REPO_ROOT / "docs" / "pipeline.md",
        "/api/v2/assets/events",
        {
            "AIRFLOW=http://127.0.0.1:8080": f"AIRFLOW={stack.api_url}",
            "MODEL=adclick": f"MODEL={NAME}",
            "<the admin password>": stack.admin.password,
            '\\"data_path\\": \\"advertising.csv\\"': f'\\"data_path\\": \\"{NAME}.csv\\"',
        },
    )
    # The session stack's tokens live 8 s: on a busy machine the example's three calls may
    # outlast one, and then its curl fails on the 401 before anything is posted.
    wait_until(lambda: run_bash(example, check=False), ANSWER_S, "the example to post")

    run, _ = next_asset_run(admin, TRAINING, trainings, RUN_TIMEOUT_S)
    run = finished(stack, TRAINING, run)
    assert run["state"] == "success", why(stack, TRAINING, run)
    assert trained_on(stack, run) == f"{NAME}.csv"
    assert admin.xcom(TRAINING, run["dag_run_id"], RESULT_TASK_ID)["promoted"] is True

    scoring, _ = next_asset_run(admin, SCORING, scorings, RUN_TIMEOUT_S)
    scoring = finished(stack, SCORING, scoring)
    assert scoring["state"] == "success", why(stack, SCORING, scoring)
    skipped = states(stack, SCORING, scoring)
    assert skipped["locate_input"] == "skipped" and set(skipped.values()) == {"skipped"}


def test_a_batch_landing_in_the_inbox_is_scored(stack: EmbeddedStack) -> None:
    admin = client(stack)
    scorings = asset_runs(admin, SCORING)
    inbox = stack.data_dir / "incoming"
    inbox.mkdir(exist_ok=True)
    batch = pd.read_csv(stack.data_dir / f"{NAME}.csv").drop(columns=[SPEC.target])
    batch.to_csv(inbox / "monday.csv", index=False)

    run, _ = next_asset_run(admin, SCORING, scorings, RUN_TIMEOUT_S)
    run = finished(stack, SCORING, run)
    assert run["state"] == "success", why(stack, SCORING, run)
    scored = pd.read_parquet(
        stack.data_dir / "predictions" / "monday" / f"{champion_version(stack)}.parquet"
    )
    assert len(scored) == len(batch) and set(scored["prediction"]) <= set(SPEC.labels)


def test_a_csv_landing_in_the_data_root_trains_on_it_and_rescoring_follows(
    stack: EmbeddedStack,
) -> None:
    admin = client(stack)
    trainings, scorings = asset_runs(admin, TRAINING), asset_runs(admin, SCORING)
    # The same rows with other line endings: new bytes, the same model (a tie promotes).
    landed = stack.data_dir / f"{NAME}-crlf.csv"
    landed.write_bytes((stack.data_dir / f"{NAME}.csv").read_bytes().replace(b"\n", b"\r\n"))
    put = time.monotonic()

    run, seen = next_asset_run(admin, TRAINING, trainings, LANDED_WITHIN_S)
    assert seen - put < LANDED_WITHIN_S
    run = finished(stack, TRAINING, run)
    assert run["state"] == "success", why(stack, TRAINING, run)
    assert trained_on(stack, run) == landed.name
    result = admin.xcom(TRAINING, run["dag_run_id"], RESULT_TASK_ID)
    assert result["promoted"] is True and result["version"] == champion_version(stack)

    scoring, _ = next_asset_run(admin, SCORING, scorings, RUN_TIMEOUT_S)
    scoring = finished(stack, SCORING, scoring)
    assert scoring["state"] == "success", why(stack, SCORING, scoring)
    rescored = stack.data_dir / "predictions" / "monday" / f"{result['version']}.parquet"
    assert rescored.is_file(), "the newest batch, scored by the new champion"


def test_the_same_bytes_landing_again_start_nothing(stack: EmbeddedStack) -> None:
    admin = client(stack)
    trainings = asset_runs(admin, TRAINING)
    again = stack.data_dir / f"{NAME}-crlf-again.csv"
    again.write_bytes((stack.data_dir / f"{NAME}-crlf.csv").read_bytes())
    time.sleep(QUIET_S)
    assert asset_runs(admin, TRAINING) == trainings
