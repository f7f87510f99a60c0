"""
### Control DAG for the latency benchmark

The training DAG's shape with tasks that do no work, so `bench/pipeline_latency.py` can tell
the cost of the ML work from the cost of Airflow running the chain: the same seven tasks, the
same default args, and the same XCom traffic (`build_model` mapped over a one-candidate list;
each task returns a small record; only `send_email` receives an upstream one).
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
    @task
    def load_data() -> dict:
        return record("load_data")

    @task
    def data_preprocessing() -> dict:
        return record("data_preprocessing")

    @task
    def separate_data_outputs() -> list[dict]:
        return [{}]

    @task
    def build_model(candidate: dict) -> dict:
        return {**record("build_model"), "candidate": candidate}

    @task
    def load_model() -> dict:
        return {**record("load_model"), "version": "0", "promoted": True}

    @task
    def send_email(registered: dict) -> dict:
        return {"subject": f"version {registered['version']}"}

    @task
    def trigger_monitor() -> None:
        pass

    grid, registered = separate_data_outputs(), load_model()
    chain(load_data(), data_preprocessing(), grid, build_model.expand(candidate=grid), registered)
    send_email(registered) >> trigger_monitor()


ad_click_control()
