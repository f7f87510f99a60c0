"""The ad-click model's grid of candidates: checked at once against the estimator, each fitted
in its own directory, the best one registered with every candidate's scores; the default grid
is exactly the single model."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from adclick import candidates, steps
from adclick.errors import ArtifactError, ConfigError, FitError
from adclick.registry import ModelRegistry
from adclick.workdir import candidate_dir
from adclick_airflow import mail
from embedded.progress import progress_line, task_label
from testkit.datasets import SAMPLE_CSV, adclick, split_sample
from testkit.files import load_model_file
from testkit.tasks import combined_state

SPEC = adclick()
FEATURES, TARGET = SPEC.features, SPEC.target
GATE = {"metric": "accuracy", "min": 0.5}
GRID = [{"C": 0.001}, {}, {"C": 1.0, "max_iter": 1000}, {"l1_ratio": 1, "solver": "liblinear"}]


@pytest.fixture(scope="module")
def split_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return split_sample(tmp_path_factory.mktemp("grid"))


@pytest.fixture(scope="module")
def fitted(split_workdir: Path) -> list[dict]:
    return [
        steps.fit_and_score(split_workdir, SPEC, candidate=c, index=i) for i, c in enumerate(GRID)
    ]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (
            [{"C": 1}, {"gamma": 2}],
            r"candidates\[1\]: unknown key 'gamma' \(value 2\) for model adclick; known: C",
        ),
        ([{"C": 0}], r"candidates\[0\]: C=0 is not allowed: The 'C' parameter of Logistic"),
        ([{"C": "1"}], r"candidates\[0\]: C='1' is not allowed"),
        ([{"classify__tol": -1}], r"classify__tol=-1 is not allowed: The 'tol' parameter"),
        ([{"class_weight": "heavy"}], r"class_weight='heavy' is not allowed"),
        ([{"solver": "adam"}], r"solver='adam' is not allowed: The 'solver' parameter"),
        ([{"C": [1]}], r"candidates\[0\]: C=\[1\] is not a plain value"),
        ([{}, "C=1"], r"candidates\[1\] must be an object"),
        ([], r"candidates must be a non-empty list"),
        ({"C": 1}, r"candidates must be a non-empty list"),
        ([{}] * 65, r"65 given, at most 64"),
    ],
)
def test_a_bad_grid_is_refused_naming_the_candidate_key_and_value(grid, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        candidates.check_against(SPEC, candidates.check_candidates(grid), 42)


def test_the_json_schema_leaves_the_keys_to_the_estimator() -> None:
    schema = candidates.json_schema()
    jsonschema.validate(GRID, schema)
    jsonschema.validate(candidates.DEFAULT_GRID, schema)
    jsonschema.validate([{"gamma": 1}], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([1], schema)


def test_a_combination_the_estimator_refuses_fails_its_fit_naming_it(split_workdir: Path) -> None:
    """The estimator checks combinations only when it fits: the error names the module, the
    candidate and the estimator's own reason."""
    with pytest.raises(FitError) as caught:
        steps.fit_and_score(split_workdir, SPEC, candidate={"l1_ratio": 0.5}, index=3)
    message = str(caught.value)
    assert message.startswith("dags/models/adclick.py: candidates[3] {'l1_ratio': 0.5}: ")
    assert "fitting Pipeline fails: ValueError: Solver lbfgs supports only" in message


def test_the_default_grid_fits_todays_model(split_workdir: Path) -> None:
    """One candidate, the classifier's defaults: the same pipeline, the same fitted values."""
    import pandas as pd

    (only,) = candidates.DEFAULT_GRID
    result = steps.fit_and_score(split_workdir, SPEC, candidate=only, index=0)
    train = pd.read_parquet(split_workdir / steps.TRAIN)
    before = Pipeline(
        [
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(max_iter=1000, random_state=42)),
        ]
    ).fit(train[list(FEATURES)], train[TARGET])
    saved = load_model_file(candidate_dir(split_workdir, 0) / steps.MODEL)
    assert saved.get_params(deep=True).keys() == before.get_params(deep=True).keys()
    assert repr(saved) == repr(before)
    for name in ("coef_", "intercept_"):
        np.testing.assert_array_equal(
            getattr(saved.named_steps["classify"], name),
            getattr(before.named_steps["classify"], name),
        )
    np.testing.assert_array_equal(
        saved.named_steps["scale"].mean_, before.named_steps["scale"].mean_
    )
    assert result["params"] == SPEC.hyperparameters


def test_each_candidate_has_its_own_model_and_record(
    split_workdir: Path, fitted: list[dict]
) -> None:
    for index, result in enumerate(fitted):
        own = candidate_dir(split_workdir, index)
        assert json.loads((own / steps.METRICS_RECORD).read_text()) == result
        assert result["params"]["C"] == load_model_file(own / steps.MODEL).named_steps["classify"].C
        assert result["index"] == index and result["params"]["C"] == GRID[index].get("C", 1.0)
    assert fitted[0]["metrics"]["accuracy"] < fitted[1]["metrics"]["accuracy"]
    assert fitted[1]["metrics"] == fitted[2]["metrics"], "the same model twice: a tie"


def test_the_best_candidate_is_registered_ties_going_to_the_lowest_index(
    split_workdir: Path, fitted: list[dict], tmp_path: Path
) -> None:
    best = max(r["metrics"]["accuracy"] for r in fitted)
    expected = min(r["index"] for r in fitted if r["metrics"]["accuracy"] == best)
    result = steps.register_model(
        split_workdir, tmp_path / "model", SPEC, GATE, "run-grid", candidates=len(GRID)
    )
    assert result["candidate"] == expected and expected in (1, 3)
    assert result["candidates"] == fitted
    assert result["metrics"] == fitted[expected]["metrics"]
    stored = ModelRegistry(tmp_path / "model").current()
    model_bytes = (candidate_dir(split_workdir, expected) / steps.MODEL).read_bytes()
    assert Path(stored["path"]).read_bytes() == model_bytes
    assert stored["metadata"]["candidates"] == fitted
    assert stored["metadata"]["candidate"] == expected


def test_best_candidate_breaks_ties_by_index_whatever_the_order() -> None:
    records = [
        {"index": 2, "metrics": {"accuracy": 0.9}},
        {"index": 1, "metrics": {"accuracy": 0.95}},
        {"index": 0, "metrics": {"accuracy": 0.95}},
    ]
    assert steps.best_candidate(records, GATE)["index"] == 0


def test_a_candidate_that_left_no_result_stops_the_registration(
    split_workdir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ArtifactError, match=r"candidate 4 of 5 left no result"):
        steps.register_model(split_workdir, tmp_path / "model", SPEC, GATE, "run-x", candidates=5)
    assert not (tmp_path / "model").exists()


def test_the_run_mail_lists_every_candidate_and_marks_the_chosen(fitted: list[dict]) -> None:
    links = mail.Links("http://monitor/runs/r", "http://airflow/r")
    result = {"metrics": fitted[1]["metrics"], "candidate": 1, "candidates": fitted}
    html = mail.run_report("ad_click_training", "r", result, links).html
    assert "Candidates (hold-out scores)" in html and html.count("C=") == len(GRID)
    assert "1 (chosen)" in html and "0 (chosen)" not in html
    assert f"{fitted[0]['metrics']['accuracy']:.4f}" in html
    single = mail.run_report("ad_click_training", "r", {**result, "candidates": fitted[:1]}, links)
    assert "Candidates" not in single.html, "a single candidate needs no table"


@pytest.mark.parametrize(
    ("states", "together"),
    [
        (["success"], "success"),
        (["success", "success", "success"], "success"),
        (["success", "running", None], "running"),
        (["success", "failed", "running"], "failed"),
        (["success", "up_for_retry"], "up_for_retry"),
        (["success", "skipped"], "skipped"),
        (["success", "removed"], "success"),
        ([None, None], None),
    ],
)
def test_a_mapped_tasks_instances_show_one_state(states: list, together: str | None) -> None:
    assert combined_state(states) == together


def test_progress_names_each_instance_of_a_mapped_task() -> None:
    tasks = [
        {"task_id": "separate_data_outputs", "map_index": -1, "state": "success"},
        {"task_id": "build_model", "map_index": 0, "state": "success", "start_date": "1"},
        {"task_id": "build_model", "map_index": 1, "state": "running", "start_date": "2"},
    ]
    assert task_label(tasks[0]) == "separate_data_outputs"
    assert progress_line(tasks, 3) == "[2/3] build_model[1] running, 3 s"


def test_the_command_line_takes_a_grid(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from adclick import cli

    grid = '[{"C": 0.001}, {}]'
    args = ["train", "--data", SAMPLE_CSV, "--model-dir", tmp_path / "m", "--grid", grid]
    assert cli.main([str(a) for a in args]) == cli.EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["candidate"] == 1 and [c["params"]["C"] for c in summary["candidates"]] == [
        0.001,
        1.0,
    ]
    assert cli.main([str(a) for a in args[:-1]] + ['[{"C": -1}]']) == cli.EXIT_BAD_DATA
    assert "error: candidates[0]: C=-1 is not allowed" in capsys.readouterr().err
    assert len(ModelRegistry(tmp_path / "m").versions()) == 1, "the bad grid trained nothing"
