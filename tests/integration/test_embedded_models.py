"""A fixture model (text labels, a text category, gaps) through the real embedded stack, as
``scripts/run-embedded --model tumours`` trains it: its own DAG, mail, monitor run, registry
folder, MLflow registered model, and ``pyfunc`` predicting labels from the raw CSV."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest

from adclick.registry import ModelRegistry
from adclick.tracking import CHAMPION_ALIAS
from embedded.__main__ import summary, train_once
from embedded.stack import EmbeddedStack
from testkit.fixture_models import EMBEDDED as NAME

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def outcome(embedded_stack: EmbeddedStack) -> dict:
    return train_once(embedded_stack, NAME, {"candidates": [{"C": 0.01}, {}]})


def test_the_model_trains_through_its_own_dag(embedded_stack: EmbeddedStack, outcome: dict) -> None:
    run, result = outcome["run"], outcome["result"]
    assert run["dag_id"] == f"{NAME}_training" and run["state"] == "success", outcome
    assert (result["model"], result["task"], result["labels"]) == (NAME, "binary", ["B", "M"])
    assert result["class_names"] == ["benign", "malignant"] and result["candidate"] == 1
    assert outcome["monitor"] and outcome["monitor"]["state"] == "success"
    current = ModelRegistry(embedded_stack.model_dir / NAME).current()
    assert current["version"] == result["version"]
    ad_click = ModelRegistry(embedded_stack.model_dir).current()
    assert ad_click is None or ad_click["metadata"]["model"] == "adclick"
    text = summary(embedded_stack, outcome)
    assert f"Training run   {run['dag_run_id']}: SUCCESS" in text
    assert f"Accuracy       {result['metrics']['accuracy']:.4f}" in text


def test_the_run_is_mailed(embedded_stack: EmbeddedStack, outcome: dict) -> None:
    run_id = outcome["run"]["dag_run_id"]
    mail = embedded_stack.mail.wait_for(lambda m: run_id in m["Subject"] and NAME in m["Subject"])
    assert f"{outcome['result']['metrics']['accuracy']:.4f}" in mail["HTML"]


def test_the_champion_loads_with_pyfunc_and_predicts_labels_from_the_raw_csv(
    embedded_stack: EmbeddedStack, outcome: dict
) -> None:
    mlflow.set_tracking_uri(embedded_stack.mlflow_url)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@{CHAMPION_ALIAS}")
    raw = pd.read_csv(embedded_stack.data_dir / f"{NAME}.csv")
    predicted = pd.Series(model.predict(raw))
    assert set(predicted) == {"B", "M"} and len(predicted) == len(raw)
    tracked = outcome["result"]["mlflow"]
    run = mlflow.MlflowClient(embedded_stack.mlflow_url).get_run(tracked["run_id"])
    assert run.data.tags["airflow.dag_id"] == f"{NAME}_training"
    assert json.loads(run.data.tags["model_labels"]) == ["B", "M"]


def test_the_promotion_is_an_asset_event_in_the_rest_api(
    embedded_stack: EmbeddedStack, outcome: dict
) -> None:
    result = outcome["result"]
    assert result["promoted"] is True
    admin = embedded_stack.client()
    assets = admin.request("GET", "/api/v2/assets", params={"name_pattern": f"{NAME}_champion"})
    (asset,) = [a for a in assets["assets"] if a["name"] == f"{NAME}_champion"]
    events = admin.request("GET", "/api/v2/assets/events", params={"asset_id": asset["id"]})[
        "asset_events"
    ]
    (event,) = [e for e in events if e["source_run_id"] == outcome["run"]["dag_run_id"]]
    assert event["extra"]["version"] == result["version"]
    assert event["extra"]["metric"] == "accuracy"
    assert event["extra"]["score"] == result["metrics"]["accuracy"]
