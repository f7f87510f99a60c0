"""New data in the Compose stack's bucket: an object uploaded under ``data/`` starts a training
run on it within 30 s (the triggerer watches the prefix); the same bytes again start none."""

from __future__ import annotations

import time

import pytest

from adclick.landing import LEDGER_FILES
from adclick.landing import TRAINING as TRAINING_LANDINGS
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from testkit.compose import BUCKET, ComposeStack
from testkit.landings import asset_runs, next_asset_run
from testkit.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

LANDED_WITHIN_S = 30
FIRST_LOOK_S = 120
QUIET_S = 20  # four looks of the triggerer, at its default of one every 5 s


def test_an_uploaded_object_trains_once(stack: ComposeStack) -> None:
    fs = stack.objects()
    admin = stack.api("admin", timeout=60)
    admin.set_paused(TRAINING, False)
    # What is there at the watcher's first look is no new data: upload after it.
    ledger = f"{BUCKET}/model/{LEDGER_FILES[TRAINING_LANDINGS]}"
    wait_until(lambda: fs.exists(ledger), FIRST_LOOK_S, "the landing watcher's first look")
    before = asset_runs(admin, TRAINING)
    # The seeded rows with other line endings: new bytes, a model like the seeded one.
    seeded = fs.cat(f"{BUCKET}/data/advertising.csv")
    name = f"uploaded-{int(time.time())}.csv"
    fs.pipe(f"{BUCKET}/data/{name}", seeded.replace(b"\n", b"\r\n"))
    put = time.monotonic()

    run, seen = next_asset_run(admin, TRAINING, before, LANDED_WITHIN_S)
    assert seen - put < LANDED_WITHIN_S
    loaded = wait_until(
        lambda: admin.xcom(TRAINING, run["dag_run_id"], "load_data"), 300, "load_data"
    )
    assert loaded["source"] == name

    after = asset_runs(admin, TRAINING)
    fs.pipe(f"{BUCKET}/data/again-{name}", seeded.replace(b"\n", b"\r\n"))
    time.sleep(QUIET_S)
    assert asset_runs(admin, TRAINING) == after
    # The landed run trains and may promote: the tests after this one start from its end.
    admin.wait_for_run(TRAINING, run["dag_run_id"], timeout=420)
