"""The monitor's drawing and formatting helpers: SVG charts and their ticks, the confusion
grid, the error a task log ends with, the history size setting, the run command's progress
line."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from airflow_rest.client import last_error
from embedded.progress import progress_line
from monitor import create_app
from monitor.charts import Point, line_chart, nice_ticks
from result_views import confusion_cells

SVG = "{http://www.w3.org/2000/svg}"


def points(values: list[float | None], states: list[str]) -> list[Point]:
    return [
        Point(f"run-{i}", state, value, f"run {i}", f"/runs/run-{i}")
        for i, (value, state) in enumerate(zip(values, states, strict=True))
    ]


def test_one_point_per_run_in_order_failed_ones_marked() -> None:
    svg = line_chart(
        "accuracy",
        "Accuracy",
        points([0.95, None, 0.97, None], ["success", "failed", "success", "running"]),
        ceiling=1.0,
    )

    root = ET.fromstring(str(svg))
    marks = root.findall(f"{SVG}a")
    assert [m.get("data-run-id") for m in marks] == ["run-0", "run-1", "run-2", "run-3"]
    assert [m.get("class") for m in marks] == [
        "point value success",
        "point missing failed",
        "point value success",
        "point missing running",
    ]
    assert [m.get("href") for m in marks] == [f"/runs/run-{i}" for i in range(4)]
    assert marks[1].find(f"{SVG}title").text == "run 1"
    assert len(root.find(f"{SVG}polyline").get("points").split()) == 2
    dots = [float(m.find(f"{SVG}circle").get("cy")) for m in (marks[0], marks[2])]
    assert dots[1] < dots[0]  # higher accuracy is drawn higher
    lowest = max(float(line.get("y1")) for line in root.iter(f"{SVG}line"))
    crosses = [float(m.find(f"{SVG}circle").get("cy")) for m in (marks[1], marks[3])]
    assert min(crosses) > lowest + 10, "a missing value must not sit on a gridline"
    ticks = [t.text for t in root.iter(f"{SVG}text") if "tick" in t.get("class")]
    assert ticks == ["0.94", "0.95", "0.96", "0.97", "0.98"]
    assert (
        "<script" not in svg
        and "style=" not in svg
        and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )


def test_no_runs_and_one_run_draw_without_dividing_by_zero() -> None:
    empty = ET.fromstring(str(line_chart("duration", "D", [])))
    assert empty.findall(f"{SVG}a") == [] and "no runs yet" in ET.tostring(empty, "unicode")
    single = ET.fromstring(str(line_chart("duration", "D", points([12.0], ["success"]))))
    assert len(single.findall(f"{SVG}a")) == 1


def test_chart_escapes_what_it_is_given() -> None:
    hostile = [Point("<x>", "failed", None, "<script>", "/runs/%3Cx%3E?a=1&b=2")]
    svg = str(line_chart("accuracy", "<b>", hostile))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&amp;b=2" in svg


@pytest.mark.parametrize(
    ("values", "floor", "ceiling", "expected"),
    [
        ([0.9293, 0.9764], 0.0, 1.0, [0.92, 0.94, 0.96, 0.98, 1.0]),
        ([48.1, 53.8, 60.2], 0.0, None, [45, 50, 55, 60, 65]),
        ([-0.2, 0.45], None, 1.0, [-0.5, 0.0, 0.5, 1.0]),
        ([], 0.0, None, [0.0, 0.25, 0.5, 0.75, 1.0]),
        ([1234.0, 5678.0], 0.0, None, [0, 2000, 4000, 6000, 8000]),
    ],
)
def test_axis_ticks_sit_at_round_values(values, floor, ceiling, expected) -> None:
    assert nice_ticks(values, floor, ceiling) == pytest.approx(expected)


def test_confusion_grid_counts_rates_and_labels_from_the_result() -> None:
    result = {"labels": ["a", "b"], "class_names": ["alpha", "beta"]}
    grid = confusion_cells({**result, "metrics": {"confusion_matrix": [[140, 10], [5, 145]]}})

    assert [[c["count"] for c in row] for row in grid] == [[140, 10], [5, 145]]
    assert grid[0][0]["rate"] == pytest.approx(140 / 150) and grid[1][0]["rate"] == 5 / 150
    assert [[c["correct"] for c in row] for row in grid] == [[True, False], [False, True]]
    assert grid[1][0]["actual"] == "beta" and grid[1][0]["predicted"] == "alpha"
    three = confusion_cells({"metrics": {"confusion_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}})
    assert [c["predicted"] for c in three[0]] == ["0", "1", "2"]  # no names: the position
    zeros = confusion_cells({"metrics": {"confusion_matrix": [[0, 0], [0, 0]]}})
    assert zeros[0][0]["rate"] is None
    for bad in (
        None,
        "[[1, 2], [3, 4]]",
        [[1, 2]],
        [[1, 2], [3]],
        [[1, -2], [3, 4]],
        [[True, 1], [1, 1]],
    ):
        assert confusion_cells({"metrics": {"confusion_matrix": bad}}) is None, bad
    regression = {"task": "regression", "metrics": {"confusion_matrix": [[1, 0], [0, 1]]}}
    assert confusion_cells(regression) is None


def test_last_error_is_the_exception_the_task_raised() -> None:
    events = [
        {"event": "starting", "level": "info"},
        "a plain line",
        {
            "event": "Task failed with exception",
            "level": "error",
            "error_detail": [
                {"exc_type": "AirflowFailException", "exc_value": "data.csv: column 'Age'"},
                {"exc_type": "DataValidationError", "exc_value": "inner", "is_cause": True},
            ],
        },
        {"event": "::endgroup::", "level": "info"},
    ]

    assert last_error(events) == {
        "type": "AirflowFailException",
        "message": "data.csv: column 'Age'",
    }
    assert last_error(events[:2]) is None
    assert last_error([{"error_detail": "not a list"}, {"error_detail": []}]) is None


def test_history_runs_setting_is_checked() -> None:
    assert create_app({"HISTORY_RUNS": "5"}).config["HISTORY_RUNS"] == 5
    for bad in ("0", "101", "ten", "2.5"):
        with pytest.raises(ValueError, match="MONITOR_HISTORY_RUNS must be a whole number"):
            create_app({"HISTORY_RUNS": bad})


def test_progress_line_names_the_task_that_runs_now() -> None:
    tasks = [
        {"task_id": "load_data", "state": "success", "start_date": "2026-01-01T00:00:01"},
        {"task_id": "build_model", "state": "running", "start_date": "2026-01-01T00:00:05"},
        {"task_id": "load_model", "state": None, "start_date": None},
    ]
    assert progress_line(tasks, 12.3) == "[1/3] build_model running, 12 s"
    assert progress_line([], 0.2) == "[0/0] waiting to start, 0 s"
