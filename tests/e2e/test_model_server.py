"""The model service of the Compose stack, from the outside: after a training run its
container serves the champion the registry in the bucket names, in MLflow's protocol too;
other host names are refused; its S3 identity can read the registries and nothing else."""

from __future__ import annotations

import json
import os
import subprocess

import pandas as pd
import pytest
import requests

from adclick import contract
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from embedded.stack import REPO_ROOT
from testkit.compose import BUCKET, ComposeStack
from testkit.datasets import SAMPLE_CSV
from testkit.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]
MODEL = contract.load_named(contract.DEFAULT_MODEL, REPO_ROOT / "dags" / contract.MODELS_DIR)


@pytest.fixture(scope="module")
def url() -> str:
    return os.environ["E2E_MODEL_SERVER_URL"]


@pytest.fixture(scope="module")
def champion(stack: ComposeStack, url: str) -> str:
    """The version current.json names after a training run (the model's first, or kept)."""
    admin = stack.api("admin")
    run = admin.wait_for_run(TRAINING, admin.trigger(TRAINING)["dag_run_id"], timeout=420)
    assert run["state"] == "success", run
    objects = stack.objects()
    version = json.loads(objects.cat(f"{BUCKET}/model/current.json"))["version"]
    wait_until(
        lambda: requests.get(f"{url}/health", timeout=5).json()["models"].get("adclick") == version,
        30,
        "the model service to serve the champion",
    )
    return version


def test_it_serves_the_champion_in_both_protocols(url: str, champion: str) -> None:
    rows = pd.read_csv(SAMPLE_CSV).head(3)
    records = rows.to_dict(orient="records")

    predicted = requests.post(f"{url}/models/adclick/predict", json=records, timeout=30)
    invoked = requests.post(
        f"{url}/models/adclick/invocations", json={"dataframe_records": records}, timeout=30
    )

    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["model_version"] == champion
    assert invoked.json()["predictions"] == predicted.json()["predictions"]
    dropped = MODEL.features[0]
    missing = [{k: v for k, v in r.items() if k != dropped} for r in records]
    refused = requests.post(f"{url}/models/adclick/predict", json=missing, timeout=30)
    assert refused.status_code == 400 and refused.json()["column"] == dropped


def test_another_host_name_is_refused(url: str) -> None:
    answer = requests.get(f"{url}/version", headers={"Host": "attacker.example"}, timeout=10)
    assert answer.status_code == 400


def test_its_identity_reads_the_registries_and_nothing_else(stack: ComposeStack) -> None:
    def read(name: str) -> str:
        path = f"/run/secrets/model-server/{name}"
        command = [*stack.compose, "exec", "-T", "model-server", "cat", path]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    key, secret = map(read, ("MODEL_SERVER_S3_ACCESS_KEY_ID", "MODEL_SERVER_S3_SECRET_ACCESS_KEY"))
    objects = stack.objects(key, secret)
    assert json.loads(objects.cat(f"{BUCKET}/model/current.json"))["version"]
    for refused in (
        lambda: objects.cat(f"{BUCKET}/data/advertising.csv"),
        lambda: objects.pipe(f"{BUCKET}/model/current.json", b"{}"),
        lambda: objects.ls(f"{BUCKET}/model"),
    ):
        with pytest.raises(PermissionError):
            refused()
