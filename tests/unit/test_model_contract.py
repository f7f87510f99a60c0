"""The model contract and the generic steps, with the fixture models (scikit-learn's bundled
datasets): modules checked with errors naming the file, grids checked by the estimator, data
checks after preprocessing, metrics and gate by task, original labels predicted."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from adclick import candidates, contract, steps
from adclick.contract import ContractError
from adclick.errors import ConfigError, DataValidationError, FitError, QualityGateError
from adclick.registry import ModelRegistry
from adclick.workdir import candidate_dir
from testkit import fixture_models
from testkit.files import load_model_file


def spec(name: str) -> contract.ModelSpec:
    return contract.load_module(fixture_models.module(name))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixture_models.export_all(tmp_path_factory.mktemp("data"))


def module_with(tmp_path: Path, source: str, name: str = "churn") -> Path:
    models = tmp_path / "dags" / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / f"{name}.py").write_text(source)
    return models


IRIS = fixture_models.module("iris").read_text()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (('TARGET = "species"', ""), "TARGET is not defined"),
        (('TARGET = "species"', "TARGET = 3"), "TARGET must be a column name"),
        (("FEATURES = [", "FEATURES = 'x'\nOTHER = ["), "FEATURES must be a non-empty list"),
        (('TASK = "multiclass"', 'TASK = "ranking"'), "TASK must be one of 'binary'"),
        (('TASK = "multiclass"', 'TASK = "binary"'), "TASK 'binary' needs exactly 2 LABELS"),
        (('LABELS = ["setosa"', 'LABELS = None\nX = ["setosa"'), "LABELS is not defined"),
        (('TASK = "multiclass"', 'TASK = "regression"'), "LABELS is for classification"),
        (("def build_model(", "def make_model("), "build_model is not defined"),
        (("HYPERPARAMETERS:", "PARAMS:"), "HYPERPARAMETERS is not defined"),
        (('METRIC = "f1_macro"', 'METRIC = "r2"'), "METRIC 'r2' is not a multiclass metric"),
        (("from typing import Any", "from typing import Any\nimport no_such_lib"), "No module"),
        (("from typing import Any", "from typing import Any\ndef ("), "(line 6): SyntaxError"),
        (('METRIC = "f1_macro"', 'DAG_ID = "a b"'), "DAG_ID must be letters"),
        (('METRIC = "f1_macro"', 'ALLOW_MISSING = "yes"'), "ALLOW_MISSING must be True or"),
    ],
)
def test_a_module_that_breaks_the_contract_is_named_with_the_problem(
    tmp_path: Path, change: tuple[str, str], problem: str
) -> None:
    models = module_with(tmp_path, IRIS.replace(*change))
    with pytest.raises(ContractError) as caught:
        contract.load_named("churn", models)
    assert str(caught.value).startswith("dags/models/churn.py: "), caught.value
    assert problem in str(caught.value)


@pytest.mark.parametrize("name", ["../iris", "/etc/passwd", "Iris", "a/b", "", "iris.py"])
def test_a_model_is_chosen_by_module_name_never_by_path(name: str) -> None:
    with pytest.raises(ContractError, match="a model name is a module name"):
        contract.load_named(name, fixture_models.MODELS)


def test_a_missing_model_lists_the_ones_there(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"no .*churn\.py; models there: diabetes, iris"):
        contract.load_named("churn", fixture_models.MODELS)


def test_the_modules_hash_and_description() -> None:
    iris = spec("iris")
    assert iris.sha256 == hashlib.sha256(fixture_models.module("iris").read_bytes()).hexdigest()
    assert iris.dag_id == "iris_training" and iris.gate == {"metric": "f1_macro", "min": 0.9}
    assert spec("tumours").class_names == ["benign", "malignant"]
    assert spec("diabetes").describe()["labels"] is None


def test_grid_keys_come_from_the_estimator() -> None:
    tumours = spec("tumours")
    grid = [
        {"C": 0.5},
        {"classify__class_weight": "balanced"},
        {"columns__numbers__simpleimputer__strategy": "mean"},
    ]
    assert candidates.check_against(tumours, grid, 0) == grid
    with pytest.raises(
        ConfigError, match=r"candidates\[0\]: unknown key 'n_estimators' \(value 5\)"
    ):
        candidates.check_against(tumours, [{"n_estimators": 5}], 0)
    with pytest.raises(ConfigError, match=r"strategy='middle' is not allowed: The 'strategy'"):
        candidates.check_against(
            tumours, [{"columns__numbers__simpleimputer__strategy": "middle"}], 0
        )


def test_a_fit_that_raises_names_module_candidate_and_the_estimators_message(
    data: Path, tmp_path: Path
) -> None:
    tumours = spec("tumours")
    steps.ingest_csv(data / "tumours.csv", tmp_path, tumours)
    steps.preprocess(tmp_path, tumours)
    steps.split_holdout(tmp_path, tumours)
    candidate = {"classify__l1_ratio": 0.5}
    assert candidates.check_against(tumours, [candidate], 0), "only the fit finds it"
    with pytest.raises(FitError) as caught:
        steps.fit_and_score(tmp_path, tumours, candidate=candidate, index=2)
    assert str(caught.value) == (
        f"{fixture_models.module('tumours')}: candidates[2] {{'classify__l1_ratio': 0.5}}: "
        "fitting Pipeline fails: ValueError: Solver lbfgs supports only 'l2' or None "
        "penalties, got elasticnet penalty."
    )


def test_target_values_outside_labels_are_named_with_their_lines(
    data: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(data / "iris.csv")
    frame.loc[[4, 9], "species"] = ["Setosa", "sedosa"]
    frame.to_csv(tmp_path / "typo.csv", index=False)
    with pytest.raises(DataValidationError) as caught:
        steps.ingest_csv(tmp_path / "typo.csv", tmp_path, spec("iris"))
    assert str(caught.value) == (
        f"{tmp_path / 'typo.csv'}: column 'species', lines 6, 11 (2 rows): must be one of "
        "'setosa', 'versicolor', 'virginica' (found 'Setosa', 'sedosa')"
    )


def test_after_preprocessing_rows_are_named_by_position(data: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(data / "tumours.csv", dtype={"mean radius": str})
    frame.loc[30, "mean radius"] = "twelve"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    tumours = spec("tumours")
    steps.ingest_csv(tmp_path / "bad.csv", tmp_path, tumours)  # preprocessing comes first
    with pytest.raises(DataValidationError) as caught:
        steps.preprocess(tmp_path, tumours)
    # Rows 3 and 10 have no diagnosis and are dropped by the module: positions shift by 2.
    assert "column 'mean radius', row 29: not a number (found 'twelve')" in str(caught.value)


def test_gaps_are_refused_unless_the_module_allows_them(data: Path, tmp_path: Path) -> None:
    """Gaps reach only an estimator that says it takes them (``ALLOW_MISSING``, tumours'
    imputers); any other model's run stops at once, naming the column and lines."""
    frame = pd.read_csv(data / "iris.csv")
    frame.loc[[2, 7], "petal width (cm)"] = None
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    with pytest.raises(DataValidationError) as caught:
        steps.ingest_csv(tmp_path / "gaps.csv", tmp_path, spec("iris"))
    assert str(caught.value) == (
        f"{tmp_path / 'gaps.csv'}: column 'petal width (cm)', lines 4, 9 (2 rows): missing values"
    )
    tumours = spec("tumours")
    assert (
        tumours.allow_missing
        and pd.read_csv(data / "tumours.csv")[list(tumours.features)].isna().any().any()
    )
    (tmp_path / "t").mkdir()
    steps.ingest_csv(data / "tumours.csv", tmp_path / "t", tumours)
    steps.preprocess(tmp_path / "t", tumours)


def test_missing_columns_after_preprocessing_are_named(data: Path, tmp_path: Path) -> None:
    pd.read_csv(data / "tumours.csv").drop(columns=["worst area"]).to_csv(
        tmp_path / "t.csv", index=False
    )
    tumours = spec("tumours")
    steps.ingest_csv(tmp_path / "t.csv", tmp_path, tumours)
    with pytest.raises(DataValidationError, match=r"tumours\.py: column 'worst area' missing"):
        steps.preprocess(tmp_path, tumours)


def test_a_class_of_labels_absent_from_the_data_is_refused(data: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(data / "iris.csv")
    frame[frame["species"] != "virginica"].to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(
        DataValidationError,
        match=r"only classes 'setosa' \(50 rows\), 'versicolor' \(50 rows\) present; "
        r"all of 'setosa', 'versicolor', 'virginica' are needed",
    ):
        steps.ingest_csv(tmp_path / "two.csv", tmp_path, spec("iris"))


@pytest.fixture(scope="module")
def trained(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Each fixture model through every step, two candidates each."""
    grids = {
        "iris": [{"n_estimators": 1, "max_depth": 1}, {}],
        "diabetes": [{"alpha": 1000.0}, {"alpha": 1.0}],
        "tumours": [{"C": 0.0001}, {}],
    }
    results = {}
    for name, grid in grids.items():
        model = spec(name)
        workdir = tmp_path_factory.mktemp(name)
        results[name] = {
            "workdir": workdir,
            "result": steps.run(
                data / f"{name}.csv",
                workdir / "model",
                workdir,
                model,
                run_id=f"{name}-1",
                candidates=grid,
            ),
        }
    return results


def test_metrics_by_task(trained: dict[str, dict]) -> None:
    iris = trained["iris"]["result"]["metrics"]
    assert {"accuracy", "f1_macro", "precision_macro", "recall_macro", "per_class"} <= set(iris)
    assert set(iris["per_class"]) == {"setosa", "versicolor", "virginica"}
    assert len(iris["confusion_matrix"]) == 3 and sum(map(sum, iris["confusion_matrix"])) == 45
    diabetes = trained["diabetes"]["result"]["metrics"]
    assert set(diabetes) == {"r2", "rmse", "mae", "test_rows"}
    tumours = trained["tumours"]["result"]["metrics"]
    assert {"roc_auc", "precision", "recall", "balanced_accuracy"} <= set(tumours)
    _, (fn, tp) = tumours["confusion_matrix"]
    assert tp + fn == 63, "the positive class is labels[1], 'M'"


def test_the_best_candidate_is_chosen_on_the_gate_metric_in_its_direction(
    trained: dict[str, dict],
) -> None:
    for name in ("iris", "diabetes", "tumours"):
        result = trained[name]["result"]
        assert result["candidate"] == 1, name
    diabetes = trained["diabetes"]["result"]
    rmse = [c["metrics"]["rmse"] for c in diabetes["candidates"]]
    assert rmse[1] < rmse[0] and diabetes["quality_gate"] == {
        "metric": "rmse",
        "max": 70.0,
        "passed": True,
    }


def test_predictions_are_the_original_labels_from_the_raw_csv(
    trained: dict[str, dict], data: Path
) -> None:
    for name, labels in (("iris", {"setosa", "versicolor", "virginica"}), ("tumours", {"B", "M"})):
        current = ModelRegistry(trained[name]["workdir"] / "model").current()
        model = load_model_file(current["path"])
        raw = pd.read_csv(data / f"{name}.csv")[list(spec(name).features)]
        assert set(model.predict(raw)) == labels
        assert current["metadata"]["labels"] == sorted(labels)
        assert current["metadata"]["model_sha256"] == spec(name).sha256
        assert current["metadata"]["task"] == spec(name).task


def test_params_recorded_are_the_models_own(trained: dict[str, dict]) -> None:
    iris = trained["iris"]["result"]["candidates"]
    assert iris[0]["params"] == {"n_estimators": 1, "max_depth": 1}
    assert iris[1]["params"] == {"n_estimators": 25, "max_depth": 4}
    fitted = load_model_file(candidate_dir(trained["iris"]["workdir"], 0) / steps.MODEL)
    assert (fitted.n_estimators, fitted.max_depth) == (1, 1)


def test_a_regression_below_its_gate_is_kept_rejected(
    trained: dict[str, dict], tmp_path: Path
) -> None:
    workdir = trained["diabetes"]["workdir"]
    with pytest.raises(QualityGateError, match=r"rmse 5\d\.\d+ does not meet the gate rmse <= 10"):
        steps.register_model(
            workdir,
            tmp_path / "m",
            spec("diabetes"),
            {"metric": "rmse", "max": 10.0},
            "r",
            candidates=2,
        )
    assert ModelRegistry(tmp_path / "m").current() is None


@pytest.mark.parametrize(
    ("text", "gate"),
    [
        ("accuracy>=0.9", {"metric": "accuracy", "min": 0.9}),
        (" rmse <= 12.5", {"metric": "rmse", "max": 12.5}),
    ],
)
def test_gate_text(text: str, gate: dict) -> None:
    assert contract.parse_gate(text) == gate


def test_each_model_has_its_own_registry_folder(tmp_path: Path) -> None:
    assert contract.registry_dir(tmp_path, "adclick") == tmp_path
    assert contract.registry_dir(tmp_path, "iris") == tmp_path / "iris"
