"""The file-based steps end to end over a real work dir, as the DAG runs them: the ad-click
model (``dags/models/adclick.py``) on its sample."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from adclick import contract, model, steps
from adclick.errors import ArtifactError, DataValidationError, QualityGateError
from adclick.registry import ModelRegistry
from adclick.workdir import candidate_dir
from testkit.datasets import BROKEN, adclick
from testkit.datasets import SAMPLE_CSV as SAMPLE
from testkit.files import load_model_file, snapshot

SPEC = adclick()
FEATURES, TARGET, REQUIRED = SPEC.features, SPEC.target, SPEC.required


def gate(minimum: float) -> dict:
    return {"metric": "accuracy", "min": minimum}


METRIC_KEYS = {"accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix", "test_rows"}


def json_roundtrip(data: dict) -> dict:
    """What XCom does to a step's result: it must survive unchanged."""
    return json.loads(json.dumps(data))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run of the first four steps; each result checked to be JSON as it is produced."""
    workdir = tmp_path_factory.mktemp("work")
    results = {"workdir": workdir}
    results["load_data"] = steps.ingest_csv(SAMPLE, workdir, SPEC)
    results["data_preprocessing"] = steps.preprocess(workdir, SPEC)
    results["separate_data_outputs"] = steps.split_holdout(workdir, SPEC)
    results["build_model"] = steps.fit_and_score(workdir, SPEC)
    results["metrics"] = results["build_model"]["metrics"]
    results["model_file"] = candidate_dir(workdir, 0) / steps.MODEL
    for name, result in results.items():
        if name not in ("workdir", "model_file"):
            assert json_roundtrip(result) == result, name
    return results


def test_load_data_keeps_the_used_columns_and_the_files_hash(trained: dict) -> None:
    loaded = trained["load_data"]
    assert loaded["rows"] == 1000 and loaded["source"] == str(SAMPLE)
    assert loaded["data_hash"] == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert list(pd.read_parquet(loaded["path"]).columns) == list(REQUIRED)


def test_preprocessing_keeps_the_columns_as_read_and_does_not_scale(trained: dict) -> None:
    clean = pd.read_parquet(trained["data_preprocessing"]["path"])
    assert list(clean.columns) == list(REQUIRED)
    assert dict(clean.dtypes.astype(str)) == dict(
        pd.read_csv(SAMPLE)[list(REQUIRED)].dtypes.astype(str)
    )
    assert clean["Area Income"].mean() > 1000, "scaling belongs to the model pipeline only"


def test_split_is_stratified_30_percent(trained: dict) -> None:
    split = trained["separate_data_outputs"]
    assert (split["train_rows"], split["test_rows"]) == (700, 300)
    test = pd.read_parquet(split["test_path"])
    assert test[TARGET].value_counts().to_dict() == {0: 150, 1: 150}


def test_model_is_one_pipeline_that_scales_exactly_once(trained: dict) -> None:
    model = load_model_file(trained["model_file"])
    scalers = [s for _, s in model.steps if isinstance(s, StandardScaler)]
    assert len(scalers) == 1 and list(model.feature_names_in_) == list(FEATURES)
    test = pd.read_parquet(trained["workdir"] / steps.TEST)
    raw_accuracy = (model.predict(test[list(FEATURES)]) == test[TARGET]).mean()
    assert raw_accuracy == pytest.approx(trained["metrics"]["accuracy"])


def test_metrics_are_complete_and_consistent(trained: dict) -> None:
    metrics = trained["metrics"]
    assert set(metrics) == METRIC_KEYS
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    assert tn + fp + fn + tp == metrics["test_rows"] == 300
    assert metrics["accuracy"] == pytest.approx((tn + tp) / 300)
    assert 0.93 <= metrics["accuracy"] <= 0.97 and metrics["roc_auc"] > 0.97


def test_metrics_agree_with_scikit_learns_own_functions(trained: dict) -> None:
    from sklearn import metrics as sk

    test = pd.read_parquet(trained["workdir"] / steps.TEST)
    fitted = load_model_file(trained["model_file"])
    truth, predicted = test[TARGET], fitted.predict(test[list(FEATURES)])
    scores = fitted.predict_proba(test[list(FEATURES)])[:, 1]
    ours = trained["metrics"]
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(truth, predicted))
    assert ours["precision"] == pytest.approx(sk.precision_score(truth, predicted))
    assert ours["recall"] == pytest.approx(sk.recall_score(truth, predicted))
    assert ours["f1"] == pytest.approx(sk.f1_score(truth, predicted))
    assert ours["roc_auc"] == pytest.approx(sk.roc_auc_score(truth, scores))


def test_metrics_of_a_model_that_never_says_yes_are_zero_not_errors() -> None:
    from sklearn.dummy import DummyClassifier

    test = pd.DataFrame({**{f: [0.0, 1.0, 2.0, 3.0] for f in FEATURES}, TARGET: [0, 1, 0, 1]})
    never = DummyClassifier(strategy="constant", constant=0).fit(test[list(FEATURES)], test[TARGET])

    metrics = model.evaluate(SPEC, never, test)

    assert metrics["accuracy"] == 0.5 and metrics["confusion_matrix"] == [[2, 0], [2, 0]]
    assert metrics["precision"] == metrics["recall"] == metrics["f1"] == 0.0


def test_load_model_registers_and_promotes(trained: dict, tmp_path: Path) -> None:
    result = steps.register_model(
        trained["workdir"],
        tmp_path / "model",
        SPEC,
        gate(0.9),
        "run-1",
        {"dag_id": "ad_click_training"},
    )
    assert json_roundtrip(result) == result
    assert result["promoted"] is True and result["metrics"] == trained["metrics"]
    current = ModelRegistry(tmp_path / "model").current()
    assert current["version"] == result["version"] and current["path"] == result["model_path"]
    metadata = current["metadata"]
    assert metadata["run_id"] == "run-1" and metadata["dag_id"] == "ad_click_training"
    assert metadata["data_hash"] == trained["load_data"]["data_hash"]
    assert metadata["rows"] == 1000 and metadata["features"] == list(FEATURES)
    assert set(metadata["libraries"]) >= {"python", "sklearn", "pandas", "numpy"}
    assert (metadata["model"], metadata["task"], metadata["labels"]) == (
        "adclick",
        "binary",
        [0, 1],
    )
    assert metadata["class_names"] == ["no click", "click"]
    assert metadata["model_sha256"] == hashlib.sha256(SPEC.path.read_bytes()).hexdigest()


def test_gate_failure_keeps_a_rejected_version_and_the_current_model(
    trained: dict, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    first = steps.register_model(trained["workdir"], model_dir, SPEC, gate(0.9), "good", None)
    current_files = {
        k: v for k, v in snapshot(model_dir).items() if k == "current.json" or first["version"] in k
    }
    with pytest.raises(
        QualityGateError, match=r"accuracy 0\.9\d+ does not meet the gate accuracy >= 0\.999"
    ) as caught:
        steps.register_model(trained["workdir"], model_dir, SPEC, gate(0.999), "too-strict", None)
    rejected = caught.value.result
    assert rejected["promoted"] is False and rejected["version"] != first["version"]
    assert {k: v for k, v in snapshot(model_dir).items() if k in current_files} == current_files
    assert ModelRegistry(model_dir).current()["version"] == first["version"]
    rejected_meta = ModelRegistry(model_dir).version_info(rejected["version"])["metadata"]
    assert rejected_meta["quality_gate"] == {
        "metric": "accuracy",
        "min": 0.999,
        "min_accuracy": 0.999,
        "passed": False,
    }
    assert rejected_meta["gate"] == gate(0.999)


def test_bad_data_stops_at_load_data_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="empty"):
        steps.ingest_csv(BROKEN / "empty.csv", tmp_path, SPEC)
    assert list(tmp_path.iterdir()) == []


def test_a_class_too_small_to_split_is_a_data_error(tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE)
    rare = pd.concat([frame[frame[TARGET] == 0], frame[frame[TARGET] == 1].head(1)])
    rare.to_csv(tmp_path / "rare.csv", index=False)
    workdir = tmp_path / "work"
    workdir.mkdir()
    steps.ingest_csv(tmp_path / "rare.csv", workdir, SPEC)
    steps.preprocess(workdir, SPEC)
    with pytest.raises(DataValidationError, match=r"rare\.csv: cannot split"):
        steps.split_holdout(workdir, SPEC)


def test_test_size_and_random_state_are_honoured(trained: dict, tmp_path: Path) -> None:
    def split(name: str, **options) -> tuple[dict, pd.DataFrame]:
        workdir = tmp_path / name
        workdir.mkdir()
        (workdir / steps.CLEAN).write_bytes((trained["workdir"] / steps.CLEAN).read_bytes())
        result = steps.split_holdout(workdir, SPEC, **options)
        return result, pd.read_parquet(workdir / steps.TEST)

    result, seven = split("a", test_size=0.2, random_state=7)
    assert (result["train_rows"], result["test_rows"]) == (800, 200)
    assert seven.equals(split("b", test_size=0.2, random_state=7)[1])
    assert not seven.equals(split("c", test_size=0.2, random_state=8)[1])


def test_a_model_exactly_at_min_accuracy_passes_the_gate(trained: dict, tmp_path: Path) -> None:
    """The gate is "accuracy >= min_accuracy": equal is good enough."""
    accuracy = trained["metrics"]["accuracy"]
    result = steps.register_model(
        trained["workdir"], tmp_path / "model", SPEC, gate(accuracy), "equal"
    )
    assert result["promoted"] is True
    assert ModelRegistry(tmp_path / "model").current()["version"] == result["version"]
    with pytest.raises(QualityGateError):
        steps.register_model(
            trained["workdir"], tmp_path / "model", SPEC, gate(accuracy + 1e-9), "above"
        )


@pytest.mark.parametrize(
    ("metrics", "passes"),
    [
        ({"accuracy": 0.89, "precision": 0.99, "recall": 0.99, "f1": 0.99}, False),
        ({"accuracy": 0.91, "precision": 0.10, "recall": 0.10, "f1": 0.10}, True),
    ],
)
def test_the_gate_judges_hold_out_accuracy_alone(metrics: dict, passes: bool) -> None:
    assert contract.passes(gate(0.9), metrics) is passes


def test_the_registered_result_names_the_data_it_was_trained_on(
    trained: dict, tmp_path: Path
) -> None:
    result = steps.register_model(
        trained["workdir"], tmp_path / "model", SPEC, gate(0.9), "run-data"
    )
    assert result["rows"] == 1000 and result["data_hash"] == trained["load_data"]["data_hash"]
    recorded = json.loads((trained["workdir"] / "load_model.json").read_text())
    assert recorded == result


@pytest.mark.parametrize("escape", ["model_link", "workdir_outside"])
def test_no_model_from_outside_the_artifacts_root_is_unpickled(
    trained: dict, tmp_path: Path, escape: str
) -> None:
    """Unpickling runs code: a model file that resolves outside the root is never loaded."""
    root = tmp_path / "artifacts"
    workdir = root / "run"
    workdir.mkdir(parents=True)
    for name in (steps.TEST, "load_data.json", f"candidates/0/{steps.METRICS_RECORD}"):
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_bytes((trained["workdir"] / name).read_bytes())
    planted = tmp_path / "elsewhere.joblib"
    planted.write_bytes(trained["model_file"].read_bytes())
    if escape == "model_link":
        (candidate_dir(workdir, 0) / steps.MODEL).symlink_to(planted)
    else:
        workdir = trained["workdir"]  # a real model, but not under this root
    with pytest.raises(ArtifactError, match="outside the artifacts root"):
        steps.register_model(
            workdir, tmp_path / "model", SPEC, gate(0.9), "run-x", artifact_root=root
        )
    assert not (tmp_path / "model").exists()
