"""
### Ad-click model training

Trains a logistic-regression model that predicts whether a visitor clicks an ad, from the
five numeric columns of `data/advertising.csv`, and registers it under `model/`.

`load_data -> data_preprocessing -> separate_data_outputs -> build_model -> load_model ->
send_email`, then `trigger_monitor` starts the **ad_click_monitor** DAG.

* Data travels between tasks as Parquet/joblib files in a per-run working directory under
  `ADCLICK_ARTIFACT_DIR`; XCom only carries small JSON (paths and metrics).
* A new model becomes `current` only when its hold-out accuracy reaches `min_accuracy`;
  a failed or rejected run leaves the current model untouched.
* Bad data fails `load_data` at once (no retries) with the file, column and rows at fault.
* Mail goes through the `smtp_default` connection: a report from `send_email`, a mail per
  failed task, and one when the run succeeds or fails.

Trigger with conf to override the params, e.g. `{"data_path": "advertising.csv",
"min_accuracy": 0.95}`; `data_path` is relative to the data root (`ADCLICK_DATA_DIR`).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task

from adclick_airflow import notify, settings

PARAMS = {
    "data_path": Param(
        "advertising.csv",
        type="string",
        minLength=1,
        description="CSV to train on, relative to the data root (ADCLICK_DATA_DIR).",
    ),
    "min_accuracy": Param(
        0.9,
        type="number",
        minimum=0,
        maximum=1,
        description="Quality gate: hold-out accuracy a model needs to become current.",
    ),
    "test_size": Param(0.3, type="number", exclusiveMinimum=0, exclusiveMaximum=1),
    "random_state": Param(42, type="integer"),
}


@dag(
    dag_id=settings.TRAINING_DAG_ID,
    schedule=settings.schedule("ADCLICK_TRAINING_SCHEDULE", "@daily"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["adclick", "ml", "training"],
    params=PARAMS,
    default_args={
        "owner": "ml-team",
        "retries": 2,
        "retry_delay": timedelta(seconds=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=2),
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": notify.task_failed,
    },
    on_success_callback=notify.run_succeeded,
    on_failure_callback=notify.run_failed,
)
def ad_click_training():
    @task
    def load_data(params: dict | None = None, dag_run=None, run_id: str | None = None) -> dict:
        """Validate the CSV named by `data_path` and keep a typed Parquet copy for this run.

        Bad data fails the task at once (no retries): retrying cannot fix a file.
        """
        from adclick import steps
        from adclick_airflow.tasks import fail_fast, prepare_workdir, resolve_params

        with fail_fast():
            data_path = resolve_params(params, dag_run.conf or {}, PARAMS)
            workdir = prepare_workdir(settings.TRAINING_DAG_ID, run_id)
            return {"workdir": str(workdir), **steps.load_data(data_path, workdir)}

    @task
    def data_preprocessing(loaded: dict) -> dict:
        """Keep the model's features and target, with the right dtypes."""
        from pathlib import Path

        from adclick import steps

        return {**loaded, "preprocessing": steps.data_preprocessing(Path(loaded["workdir"]))}

    @task
    def separate_data_outputs(prepared: dict, params: dict | None = None) -> dict:
        """Split into a stratified training set and a hold-out set."""
        from pathlib import Path

        from adclick import steps

        split = steps.separate_data_outputs(
            Path(prepared["workdir"]),
            test_size=float(params["test_size"]),
            random_state=int(params["random_state"]),
        )
        return {**prepared, "split": split}

    @task
    def build_model(split: dict, params: dict | None = None) -> dict:
        """Fit the scaling + logistic-regression pipeline and score it on the hold-out."""
        from pathlib import Path

        from adclick import steps

        metrics = steps.build_model(
            Path(split["workdir"]), random_state=int(params["random_state"])
        )
        return {**split, "metrics": metrics}

    @task
    def load_model(built: dict, params: dict | None = None, run_id: str | None = None) -> dict:
        """Reload the saved model, check it, register a new version and promote it if it passes.

        A model below `min_accuracy` is kept as a rejected version and fails the run.
        """
        from pathlib import Path

        from adclick import steps
        from adclick_airflow.tasks import fail_fast

        with fail_fast():
            result = steps.load_model(
                Path(built["workdir"]),
                settings.model_dir(),
                min_accuracy=float(params["min_accuracy"]),
                run_id=run_id,
                metadata={"source": built.get("source"), "dag_id": settings.TRAINING_DAG_ID},
            )
        return {
            **result,
            "workdir": built["workdir"],
            "rows": built.get("rows"),
            "data_hash": built.get("data_hash"),
        }

    @task(retries=1)
    def send_email(result: dict, run_id: str | None = None) -> dict:
        """Mail the run report: model version, where it is, and its hold-out metrics."""
        from adclick_airflow import mail

        dag_id = settings.TRAINING_DAG_ID
        subject, html = mail.run_report(dag_id, run_id, result, notify.links(dag_id, run_id))
        notify.send(subject, html)
        return {"to": settings.alert_recipients(), "subject": subject}

    trigger_monitor = TriggerDagRunOperator(
        task_id="trigger_monitor",
        trigger_dag_id=settings.MONITOR_DAG_ID,
        conf={"source_run_id": "{{ run_id }}"},
        wait_for_completion=False,
        doc_md="Start the monitor DAG so the Flask service shows this run and is up.",
    )

    loaded = load_data()
    result = load_model(build_model(separate_data_outputs(data_preprocessing(loaded))))
    send_email(result) >> trigger_monitor


ad_click_training()
