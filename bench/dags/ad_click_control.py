"""
### Control DAG for the latency benchmark

The training DAG's shape (seven tasks in a chain, same default args) with tasks that do
nothing, so `bench/pipeline_latency.py` can tell the cost of the ML work from the cost of
Airflow scheduling the chain.
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
    "trigger_monitor",
)


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
    previous = None
    for task_id in CHAIN:
        current = task(task_id=task_id)(lambda: None)()
        if previous is not None:
            previous >> current
        previous = current


ad_click_control()
