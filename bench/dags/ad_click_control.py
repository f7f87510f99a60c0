"""
### Control DAG for the latency benchmark

The training DAG's shape with tasks that do no work: the same seven tasks in a chain, the same
default args, and the same XCom traffic (each task takes the previous task's result and
returns a small dict, as the training tasks do), so `bench/pipeline_latency.py` can tell the
cost of the ML work from the cost of Airflow running the chain.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

CHAIN = (
    "load_data",
    "data_preprocessing",
    "separate_data_outputs",
    "build_model",
    "load_model",
    "send_email",
)


def passthrough(step: str):
    """A task that hands on what it got plus a small record, like the training tasks."""

    def run(upstream: dict | None = None) -> dict:
        return {**(upstream or {}), step: {"rows": 1000, "path": f"/artifacts/{step}.parquet"}}

    return task(task_id=step)(run)


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
    result = None
    for step in CHAIN:
        result = passthrough(step)(result)
    result >> task(task_id="trigger_monitor")(lambda: None)()


ad_click_control()
