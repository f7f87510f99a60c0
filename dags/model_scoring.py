"""
### Batch scoring: one DAG per model module in `dags/models/`

Each module there becomes `<model>_scoring` (the ad-click model: `ad_click_scoring`). It runs
when a CSV with the model's features lands in the scoring inbox `incoming/` under the data
root (the asset `<model>_batches`), when a new champion is promoted (the asset
`<model>_champion`: the newest batch in the inbox is scored again), and on demand with the
CSV to score, a file in the inbox: `{"input": "batch-2026-12-06.csv"}`.

`locate_input -> score_batch -> drift_report -> drifted -> mail_drift_alert`,
`drifted -> retrain_requested -> trigger_training`, and `drift_report -> log_drift`

* `locate_input` checks the conf and names the file: the conf's `input`, else the batch that
  landed, else (a new champion) the newest batch in the inbox; with none there it skips the
  run. It refuses a path outside `incoming/`.
* `score_batch` loads the champion (the version the model's registry calls `current`, its
  file's SHA-256 checked against the registry's record before it is unpickled), checks the
  CSV against the features it was trained on with the training data's checks (file, column,
  CSV lines), and scores it a chunk at a time. It writes
  `predictions/<input name>/<model version>.parquet` and `.csv` under the data root: the
  input's rows, `prediction` (the original label), `probability_<label>` per class and
  `model_version`, both published whole once every row is scored, or neither.

* `drift_report` compares the batch's features with the training sample kept with the
  version that scored it (Evidently's `DataDriftPreset`, a sample of 50,000 rows of a larger
  batch) and writes `<model version>.drift.html` and `.drift.json` beside the predictions;
  it is skipped for a version registered without a sample.
* When at least `drift_threshold` (param, default 0.5) of the columns drifted, `drifted` lets
  `mail_drift_alert` send one alert mail naming the drifted columns; with `retrain_on_drift`
  (param, default false) `trigger_training` also starts the model's training DAG on the batch
  (`data_path`: the batch must then hold the target column).
* `log_drift`, with `MLFLOW_TRACKING_URI` set (else skipped), records the report in MLflow
  as training runs are recorded: a run in the model's experiment tagged `run_kind`
  `scoring_batch` with the `model_version` that scored it, the metrics `drift_share`,
  `drift_score.<column>` and `drifted.<column>`, and the HTML and JSON report under `drift/`.
  MLflow down or refusing fails this task (retried; each try is a run of its own), as it
  fails training's: the predictions, the report and the alert do not depend on it.

Bad input fails at once (no retries); every failure mails its reason.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task

from adclick import contract, defaults
from adclick_airflow import landings, notify, settings
from adclick_contract import DRIFT_TRACKING_TASK_ID, SCORING_TAGS

log = logging.getLogger(__name__)


def scoring_dag(spec: contract.ModelSpec) -> Any:
    """The scoring DAG of one model module."""
    dag_id, name = spec.scoring_dag_id, spec.name
    dag_params = {
        # A default, even an unusable one: the run's callbacks render the params too.
        "input": Param(
            None,
            type=["null", "string"],
            description="CSV to score, relative to the scoring inbox (incoming/ in the data root).",
        ),
        "drift_threshold": Param(
            defaults.DRIFT_THRESHOLD,
            type="number",
            exclusiveMinimum=0,
            maximum=1,
            description="Share of the batch's columns that must drift for the alert mail.",
        ),
        "retrain_on_drift": Param(
            False,
            type="boolean",
            description="Start the model's training DAG on a batch that drifted.",
        ),
    }

    @dag(
        dag_id=dag_id,
        schedule=landings.scoring_schedule(spec),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        doc_md=f"{__doc__}\n#### Model `{name}` ({spec.display}, {spec.task})",
        tags=[*SCORING_TAGS, name],
        params=dag_params,
        default_args={
            "owner": "ml-team",
            "retries": 1,
            "retry_delay": timedelta(seconds=10),
            "execution_timeout": timedelta(minutes=30),
            "on_failure_callback": notify.task_failed,
        },
        on_failure_callback=notify.notify_failure,
    )
    def model_scoring():
        @task
        def locate_input(
            params: dict | None = None, dag_run=None, triggering_asset_events=None
        ) -> str:
            """Refuse unknown conf keys; name the CSV, a file inside the scoring inbox: the
            conf's, the batch that landed, or after a promotion the newest batch (none: skip)."""
            from airflow.sdk.exceptions import AirflowSkipException

            from adclick_airflow import trigger_conf
            from adclick_airflow.tasks import fail_fast

            with fail_fast():
                trigger_conf.check_conf_keys(dict(dag_run.conf or {}), set(dag_params))
                inbox = settings.scoring_inbox()
                chosen = params.get("input") or landings.landed_batch(triggering_asset_events, name)
                champion = settings.champion_asset_name(name)
                if not chosen and landings.triggered_by(triggering_asset_events, champion):
                    chosen = landings.newest_batch(inbox, spec)
                    if chosen is None:
                        raise AirflowSkipException(
                            "a new champion, and no batch in incoming/ to score again"
                        )
                if not chosen:
                    raise trigger_conf.ConfError(
                        'name the CSV to score in the conf: {"input": "<file in incoming/>"}'
                    )
                return str(trigger_conf.resolve_dataset(chosen, root=inbox))

        @task
        def score_batch(data_path: str) -> dict:
            """Score the CSV with the champion; write its predictions whole, or nothing."""
            from adclick import scoring, storage
            from adclick_airflow.tasks import fail_fast

            with fail_fast():
                settings.load_model_module(name)  # the model may use functions of its module
                champion = scoring.load_champion(settings.model_registry_dir(name))
                path = storage.location(data_path)
                parquet, csv = scoring.prediction_paths(settings.data_dir(), path, champion.version)
                summary = scoring.score_csv(
                    path, champion, parquet, csv, root=settings.scoring_inbox()
                )
            log.info("%s", scoring.describe(summary))
            return summary

        @task
        def drift_report(scored: dict, params: dict | None = None) -> dict:
            """Evidently's data drift report of the batch against the training sample of the
            version that scored it, beside the predictions; skipped for a version without one."""
            from airflow.sdk.exceptions import AirflowSkipException

            from adclick import drift, storage
            from adclick_airflow.tasks import fail_fast

            try:
                with fail_fast():
                    summary = drift.report_batch(
                        settings.model_registry_dir(name),
                        scored["parquet"],
                        scored["model_version"],
                        threshold=params["drift_threshold"],
                    )
            except drift.NoReferenceError as exc:
                raise AirflowSkipException(str(exc)) from None
            log.info("%s", drift.describe(summary))
            return {
                **summary,
                "data_path": storage.relative_name(scored["input"], settings.data_dir()),
            }

        @task(task_id=DRIFT_TRACKING_TASK_ID)
        def log_drift(report: dict, run_id: str | None = None, ti=None) -> dict:
            """Record the drift report in the model's MLflow experiment (a run tagged as a
            scoring batch, its metrics, the HTML report); skipped when tracking is off."""
            from airflow.sdk.exceptions import AirflowSkipException

            from adclick_airflow.tasks import fail_fast, training_tracker

            with fail_fast():
                tracker, context = training_tracker(dag_id, name, run_id, ti.try_number)
                if tracker is None or context is None:
                    raise AirflowSkipException("MLFLOW_TRACKING_URI is unset: tracking is off")
                tracked = tracker.record_drift(
                    context=context, report=report, registry_dir=settings.model_registry_dir(name)
                )
            log.info("drift report recorded in MLflow: %s", tracked.run_url or tracked.run_id)
            return tracked.as_dict()

        @task.short_circuit
        def drifted(report: dict) -> bool:
            """Go on to the alert (and the retraining) only when the batch drifted."""
            return bool(report["drift"])

        @task
        def mail_drift_alert(report: dict, params: dict | None = None, dag_run=None) -> dict:
            """One alert mail: the share of drifted columns, which ones, where the report is."""
            return notify.drift_alert(
                name, dag_id, dag_run.run_id, report, params["retrain_on_drift"]
            )

        @task.short_circuit
        def retrain_requested(params: dict | None = None) -> bool:
            """Go on to the training DAG only with the param ``retrain_on_drift``."""
            return bool(params["retrain_on_drift"])

        trigger_training = TriggerDagRunOperator(
            task_id="trigger_training",
            trigger_dag_id=spec.dag_id,
            conf={"data_path": "{{ ti.xcom_pull(task_ids='drift_report')['data_path'] }}"},
            wait_for_completion=False,
            doc_md="Start the model's training DAG on the batch that drifted.",
        )

        report = drift_report(score_batch(locate_input()))
        log_drift(report)
        gate = drifted(report)
        gate >> mail_drift_alert(report)
        gate >> retrain_requested() >> trigger_training

    return model_scoring()


# Modules that break the contract are reported by model_contracts.py, as import errors.
for _spec in settings.training_models()[0]:
    scoring_dag(_spec)
