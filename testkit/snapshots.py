"""Run snapshots, shaped like the ones the monitor's status layer builds, for page tests."""

from __future__ import annotations

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def hostile_run(state: str) -> dict:
    """A run in ``state`` whose every text field holds a script tag."""
    return {
        "dag_id": f"dag{HOSTILE}",
        "run_id": f"run{HOSTILE}",
        "state": state,
        "run_after": None,
        "start_date": None,
        "end_date": None,
        "duration": None,
        "run_type": f"manual{HOSTILE}",
        "triggered_by": f"rest_api{HOSTILE}",
        "note": f"note{HOSTILE}",
        "conf": {"data_path": f"x{HOSTILE}.csv"},
        "tasks": [
            {
                "task_id": f"task{HOSTILE}",
                "state": "success",
                "try_number": 1,
                "map_index": -1,
                "start_date": None,
                "duration": None,
            }
        ],
        "metrics": {"accuracy": 0.95, "test_rows": 300},
        "model": {"version": f"v{HOSTILE}", "promoted": True},
        "airflow_url": "http://airflow.example/dags/x",
        "message": None,
        "fetched_at": None,
    }
