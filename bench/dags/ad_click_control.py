"""
### Control DAG for the latency benchmark

The training DAG's shape with tasks that do no work, so `bench/pipeline_latency.py` can tell
the cost of the ML work from the cost of Airflow running the chain: the same seven tasks in a
chain, `build_model` mapped over the one-candidate list `separate_data_outputs` returns, the
same default args, and the same XCom traffic (each task returns a small record of its own;
only `send_email` receives an upstream result, `load_model`'s).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import chain, dag, task


def record(step: str) -> dict:
    """A small result like the training tasks' own (row counts, where a file went)."""
    return {"step": step, "rows": 1000, "path": f"/artifacts/{step}.parquet"}


@dag(
    dag_id="ad_click_control",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["adclick", "benchmark"],
    default_args={"retries": 2},
)
def ad_click_control():
    @task(task_id="load_data")
    def ingest() -> dict:
        return record("load_data")

    @task(task_id="data_preprocessing")
    def select() -> dict:
        return record("data_preprocessing")

    @task(task_id="separate_data_outputs")
    def split() -> list[dict]:
        return [{}]

    @task(task_id="build_model")
    def fit(candidate: dict) -> dict:
        return {**record("build_model"), "candidate": candidate}

    @task(task_id="load_model")
    def register() -> dict:
        return {**record("load_model"), "version": "0", "promoted": True}

    @task(task_id="send_email")
    def mail(registered: dict) -> dict:
        return {"subject": f"version {registered['version']}"}

    grid = split()
    registered = register()
    chain(ingest(), select(), grid, fit.expand(candidate=grid), registered)
    mail(registered) >> task(task_id="trigger_monitor")(lambda: None)()


ad_click_control()
