"""
### Ad-click model training

Trains a logistic-regression model that predicts whether a visitor clicks an ad, from the
five numeric columns of `data/advertising.csv`, and registers it under `model/`.

`load_data -> data_preprocessing -> separate_data_outputs -> build_model -> load_model ->
send_email`, then `trigger_monitor` starts the **ad_click_monitor** DAG.

* `build_model` is mapped over the `candidates` param, a grid of hyperparameters (default: one
  candidate, the classifier's defaults): one task instance per candidate, on any worker.
  `load_model` registers the candidate with the best hold-out accuracy (of equal ones, the
  lowest map index) and records every candidate's metrics.

* Each task finds the run's working directory (under `ADCLICK_ARTIFACT_DIR`) from its run id,
  never from XCom, which an admin can edit. Data travels between tasks as Parquet/joblib files
  there; each task's XCom is its own small result (row counts, metrics, the model version).
  Only `send_email` receives an upstream result: the registered model it reports.
* A new model becomes `current` only when its hold-out accuracy reaches `min_accuracy`;
  a failed or rejected run leaves the current model untouched.
* With `MLFLOW_TRACKING_URI` set, each run is an MLflow run and each model a version of the
  registered model `adclick`; its alias `champion` is the current model. `model/` keeps an
  export of the champion for consumers without MLflow.
* Bad data fails `load_data` at once (no retries) with the file, column and rows at fault;
  so does a `data_path` that is not a regular file (a FIFO, a device, a directory, a symlink
  loop) or is larger than `ADCLICK_MAX_DATASET_MB`. `load_data` has a short timeout of its own.
* Mail goes through the `smtp_default` connection: a report from `send_email`, a mail per
  failed task, and one when the run succeeds or fails.

Trigger with conf to override the params, e.g. `{"data_path": "advertising.csv",
"min_accuracy": 0.95}`; `data_path` is relative to the data root (`ADCLICK_DATA_DIR`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, chain, dag, task

from adclick import candidates, defaults
from adclick_airflow import notify, settings

PARAMS = {
    "data_path": Param(
        "advertising.csv",
        type="string",
        minLength=1,
        description="CSV to train on, relative to the data root (ADCLICK_DATA_DIR).",
    ),
    "min_accuracy": Param(
        defaults.MIN_ACCURACY,
        type="number",
        minimum=0,
        maximum=1,
        description="Quality gate: hold-out accuracy a model needs to become current.",
    ),
    "test_size": Param(defaults.TEST_SIZE, type="number", exclusiveMinimum=0, exclusiveMaximum=1),
    "random_state": Param(defaults.RANDOM_STATE, type="integer"),
    "candidates": Param(
        candidates.DEFAULT_GRID,
        **candidates.json_schema(),
        description=(
            "Grid of candidate models, one build_model task each: a list of objects setting "
            f"any of {', '.join(candidates.HYPERPARAMETERS)}; the best on the hold-out wins."
        ),
    ),
}
# Reading and checking the largest file allowed takes well under a minute; nothing a user puts
# in the data root may hold the DAG's only run slot for long.
LOAD_DATA_TIMEOUT = timedelta(minutes=2)


def run_workdir(run_id: str) -> Path:
    return settings.run_workdir(settings.TRAINING_DAG_ID, run_id)


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
    @task(task_id="load_data", execution_timeout=LOAD_DATA_TIMEOUT, retries=0)
    def ingest_dataset(params: dict | None = None, dag_run=None, run_id: str | None = None) -> dict:
        """Validate the CSV named by `data_path` and keep a typed Parquet copy for this run.

        Bad data, or a path that is not a regular file inside the data root, fails the task at
        once (no retries): retrying cannot fix a file.
        """
        from adclick import steps
        from adclick_airflow import trigger_conf
        from adclick_airflow.tasks import create_run_workdir, fail_fast

        with fail_fast():
            data_path = trigger_conf.dataset_path(params, dag_run.conf or {}, PARAMS)
            candidates.check_candidates(params["candidates"])
            workdir = create_run_workdir(settings.TRAINING_DAG_ID, run_id)
            return steps.ingest_csv(data_path, workdir, root=settings.data_dir())

    @task(task_id="data_preprocessing")
    def select_features(run_id: str | None = None) -> dict:
        """Keep the model's features and target, with the right dtypes."""
        from adclick import steps

        return steps.select_features(run_workdir(run_id))

    @task(task_id="separate_data_outputs")
    def split_holdout(params: dict | None = None, run_id: str | None = None) -> list[dict]:
        """Split into a stratified training set and a hold-out set; return the candidates to
        fit on them, one `build_model` task each."""
        from adclick import steps
        from adclick_airflow.tasks import fail_fast

        with fail_fast():
            steps.split_holdout(
                run_workdir(run_id),
                test_size=float(params["test_size"]),
                random_state=int(params["random_state"]),
            )
            return candidates.check_candidates(params["candidates"])

    @task(task_id="build_model")
    def fit_and_score(
        candidate: dict, params: dict | None = None, run_id: str | None = None, ti=None
    ) -> dict:
        """Fit one candidate's scaling + logistic-regression pipeline, score it on the hold-out."""
        from adclick import steps
        from adclick_airflow.tasks import fail_fast

        with fail_fast():
            return steps.fit_and_score(
                run_workdir(run_id),
                random_state=int(params["random_state"]),
                candidate=candidate,
                index=ti.map_index,
            )

    @task(task_id=settings.RESULT_TASK_ID)
    def register_model(params: dict | None = None, run_id: str | None = None, ti=None) -> dict:
        """Pick the best candidate, reload its saved model, check it, register a new version and
        promote it if it passes.

        With `MLFLOW_TRACKING_URI` set, the run and the model are recorded in MLflow first and
        the `champion` alias moves together with `model/current.json`. MLflow down or refusing
        fails the task (retried) and leaves `model/` as it was. A model below `min_accuracy`
        is kept as a rejected version and fails the run.
        """
        from adclick import steps
        from adclick_airflow.tasks import fail_fast, training_tracker

        workdir = run_workdir(run_id)
        with fail_fast():
            tracker, context = training_tracker(run_id, ti.try_number)
            result = steps.register_model(
                workdir,
                settings.model_dir(),
                min_accuracy=float(params["min_accuracy"]),
                run_id=run_id,
                metadata={"dag_id": settings.TRAINING_DAG_ID},
                artifact_root=settings.artifact_dir(),
                candidates=len(candidates.check_candidates(params["candidates"])),
                tracker=tracker,
                context=context,
            )
        return {**result, "workdir": str(workdir)}

    @task(task_id="send_email", retries=1)
    def mail_report(registered: dict, run_id: str | None = None) -> dict:
        """Mail the run report: model version, where it is, and its hold-out metrics."""
        from adclick_airflow import mail

        dag_id = settings.TRAINING_DAG_ID
        subject, html = mail.run_report(dag_id, run_id, registered, notify.links(dag_id, run_id))
        notify.send(subject, html)
        return {"to": settings.alert_recipients(), "subject": subject}

    trigger_monitor = TriggerDagRunOperator(
        task_id="trigger_monitor",
        trigger_dag_id=settings.MONITOR_DAG_ID,
        conf={"source_run_id": "{{ run_id }}"},
        wait_for_completion=False,
        doc_md="Start the monitor DAG so the Flask service shows this run and is up.",
    )

    grid = split_holdout()
    # A mapped task does not take its docstring as its doc by itself.
    fitted = fit_and_score.override(doc_md=fit_and_score.function.__doc__).expand(candidate=grid)
    registered = register_model()
    chain(ingest_dataset(), select_features(), grid, fitted, registered)
    mail_report(registered) >> trigger_monitor


ad_click_training()
