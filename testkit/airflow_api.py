"""A small stand-in for Airflow's REST API v2: the routes the Flask monitor reads, answering
with the fields the real api-server sends, for DAGs and runs a test describes. It lets the
monitor's pages be tested with results of every model kind before any such model ran.

Routes: ``POST /auth/token``, ``GET /api/v2/monitor/health``, ``GET /api/v2/dags`` (with
``tags`` and ``tags_match_mode``), and per DAG its ``dagRuns`` (newest first, ``limit``),
a run's ``taskInstances``, a task's XCom ``return_value`` and its log.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from adclick_contract import RESULT_TASK_ID, TRAINING_TAGS
from testkit.local_http import JSONHandler, LocalHTTPServer

TASK_IDS = (
    "load_data",
    "data_preprocessing",
    "separate_data_outputs",
    "build_model",
    RESULT_TASK_ID,
    "send_email",
    "trigger_monitor",
)
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class AirflowAPI:
    """Serves the DAGs and runs added with :meth:`add_dag` and :meth:`add_run`."""

    def __init__(self) -> None:
        self.dags: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, list[dict[str, Any]]] = {}  # dag id -> runs, oldest first
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._server = LocalHTTPServer(self._handler())
        self.url = self._server.url

    def stop(self) -> None:
        self._server.stop()

    def add_dag(self, dag_id: str, model: str, kind: tuple[str, ...] = TRAINING_TAGS) -> None:
        """A DAG tagged as every one of its ``kind`` is (``TRAINING_TAGS`` or
        ``SCORING_TAGS``) and with its model's name."""
        tags = [{"name": tag, "dag_id": dag_id} for tag in (*kind, model)]
        with self._lock:
            self.dags[dag_id] = {
                "dag_id": dag_id,
                "is_paused": False,
                "is_stale": False,
                "tags": tags,
            }
            self.runs.setdefault(dag_id, [])

    def add_run(
        self,
        dag_id: str,
        state: str = "success",
        result: dict[str, Any] | None = None,
        failed_task: str = "load_data",
        error: str = "ValueError: the input file is empty",
        duration: float = 42.0,
        returned: dict[str, Any] | None = None,
        conf: dict[str, Any] | None = None,
    ) -> str:
        """One run of ``dag_id``, an hour after its previous one; a succeeded run's result
        task returns ``result``, a failed run's ``failed_task`` logs ``error``; the tasks
        named in ``returned`` return their value there. Its run id."""
        with self._lock:
            runs = self.runs[dag_id]
            start = START + timedelta(hours=len(runs))
            run_id = f"manual__{_iso(start)}"
            finished = state in ("success", "failed")
            end = start + timedelta(seconds=duration)
            tasks = []
            for task_id in TASK_IDS:
                task_state = state if state != "failed" else "success"
                if state == "failed":
                    index, failed_at = TASK_IDS.index(task_id), TASK_IDS.index(failed_task)
                    task_state = (
                        "success"
                        if index < failed_at
                        else "failed"
                        if index == failed_at
                        else "upstream_failed"
                    )
                tasks.append(
                    {
                        "task_id": task_id,
                        "map_index": -1,
                        "state": task_state if finished else None,
                        "try_number": 1 if finished else 0,
                        "start_date": _iso(start) if finished else None,
                        "end_date": _iso(end) if finished else None,
                        "duration": 1.0 if finished else None,
                    }
                )
            runs.append(
                {
                    "run": {
                        "dag_run_id": run_id,
                        "dag_id": dag_id,
                        "state": state,
                        "run_after": _iso(start),
                        "queued_at": _iso(start),
                        "start_date": _iso(start),
                        "end_date": _iso(end) if finished else None,
                        "duration": duration if finished else None,
                        "run_type": "manual",
                        "triggered_by": "rest_api",
                        "conf": conf or {},
                        "note": None,
                        "logical_date": None,
                    },
                    "tasks": tasks,
                    "result": result if state == "success" else None,
                    "returned": returned or {},
                    "error": error,
                }
            )
            return run_id

    # -- serving --------------------------------------------------------------------------
    def _answer_for(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts == ["api", "v2", "monitor", "health"]:
            return 200, {"metadatabase": {"status": "healthy"}, "scheduler": {"status": "healthy"}}
        if parts == ["api", "v2", "dags"]:
            wanted = set(query.get("tags", []))
            every = query.get("tags_match_mode", ["any"])[0] == "all"
            dags = [
                dag
                for dag in self.dags.values()
                if not wanted
                or (
                    wanted <= {t["name"] for t in dag["tags"]}
                    if every
                    else wanted & {t["name"] for t in dag["tags"]}
                )
            ]
            return 200, {"dags": dags, "total_entries": len(dags)}
        if len(parts) < 5 or parts[:3] != ["api", "v2", "dags"] or parts[3] not in self.dags:
            return 404, {"detail": "The Dag was not found"}
        runs = self.runs[parts[3]]
        if parts[4:] == ["dagRuns"]:
            limit = int(query.get("limit", ["50"])[0])
            newest = [r["run"] for r in reversed(runs)][:limit]
            return 200, {"dag_runs": newest, "total_entries": len(runs)}
        found = next(
            (r for r in runs if len(parts) > 5 and r["run"]["dag_run_id"] == parts[5]), None
        )
        if found is None:
            return 404, {"detail": "The DagRun was not found"}
        rest = parts[6:]
        if rest == ["taskInstances"]:
            return 200, {"task_instances": found["tasks"], "total_entries": len(found["tasks"])}
        if len(rest) == 4 and rest[2] == "xcomEntries":
            value = found["result"] if rest[1] == RESULT_TASK_ID else found["returned"].get(rest[1])
            if value is None:
                return 404, {"detail": "XCom entry not found"}
            return 200, {"key": rest[3], "value": value}
        if len(rest) == 4 and rest[2] == "logs":
            detail = {
                "exc_type": found["error"].split(":")[0],
                "exc_value": found["error"].split(": ", 1)[-1],
            }
            return 200, {
                "content": [{"event": "Task failed", "level": "error", "error_detail": [detail]}]
            }
        return 404, {"detail": "Not found"}

    def _handler(self) -> type[JSONHandler]:
        api = self

        class Handler(JSONHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/auth/token":
                    return self.answer(201, {"access_token": "header.e30.signature"})
                return self.answer(405, {"detail": "Method Not Allowed"})

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                api.calls.append(url.path)
                with api._lock:
                    status, body = api._answer_for(url.path, parse_qs(url.query))
                self.answer(status, body)

        return Handler
