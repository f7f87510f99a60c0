"""
### Model training: one DAG per model module in `dags/models/`

Each module there (see `docs/bring-your-own-model.md`) becomes `<module>_training` (or its
`DAG_ID`), run on its schedule or when a new CSV with the model's columns lands in the data
root (the asset `<model>_data`; the same bytes again start nothing), with the same seven tasks:

`load_data -> data_preprocessing -> separate_data_outputs -> build_model -> load_model ->
send_email`, then `trigger_monitor` starts the **ad_click_monitor** DAG. Between
`load_model` and `send_email`, `approve_promotion -> promote_approved -> record_approval`
wait for a person's sign-off when the run asks for one.

* `load_data` checks the trigger conf, the gate and the grid (each candidate against the
  estimator's own parameters), reads the CSV named by `data_path` (in a run started by new
  data: the file the asset event names) with the file checks, and
  keeps it as Parquet, dtypes as read. Bad data fails it at once (no retries) with the file,
  column and rows at fault; so does a `data_path` that is not a regular file inside the data
  root or is larger than `ADCLICK_MAX_DATASET_MB`.
* `data_preprocessing` runs the module's `data_preprocessing`, then the data checks: features
  and target present, target values within `LABELS`, numeric columns numeric.
* `separate_data_outputs` splits train/hold-out (the module's function, else stratified for
  classification, shuffled for regression) and returns the grid.
* `build_model` is mapped over the `candidates` param: one task instance per candidate, on
  any worker, fitting `build_model(random_state, **HYPERPARAMETERS)` with the candidate's
  values and scoring it on the hold-out by task.
* `load_model` registers the best candidate on the gate's metric (in its direction; of equal
  ones the lowest map index) in the model's own registry folder and, with
  `MLFLOW_TRACKING_URI` set, as a version of the registered model named as the module. It
  becomes current (alias `champion`) only when it passes the gate and scores at least as well
  as the current champion (plus `min_improvement`) on this run's hold-out; a champion that
  cannot be scored leaves the gate alone to decide. A model that loses is registered and
  tagged `promotion=kept_champion`, and the run succeeds; a failed or rejected run leaves the
  current model untouched. A trigger conf may tighten the gate, never loosen it, unless
  `ADCLICK_ALLOW_LOOSER_GATE` is set. Each promotion updates the asset `<model>_champion`
  (extra: version, metric, score), on which other DAGs can be scheduled.
* With `require_approval` (default false), a model that would be promoted waits for a person:
  `approve_promotion` (Airflow's `ApprovalOperator`, task state `awaiting_input`, no worker
  slot held) mails the request with the comparison and the link to answer, as an account of
  role `user` (`approver`). "Approve" runs `promote_approved`, which moves `current` and
  `champion` and updates the asset; "Reject", or no answer within `approval_timeout` hours,
  keeps the champion. `record_approval` records the answer (who, when) in `metadata.json`,
  on the MLflow run and version, and returns the run's final result. Without an approval to
  wait for, these three pass straight through.
* `send_email` mails the report through the `smtp_default` connection.

Each task finds the run's working directory (under `ADCLICK_ARTIFACT_DIR`) from its run id,
never from XCom, which an admin can edit. The module is chosen by the DAG, never by the
trigger conf. Trigger with conf to override the params, e.g. `{"data_path": "iris.csv",
"gate": {"metric": "f1_macro", "min": 0.9}}`; `data_path` is relative to the data root.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Asset, AssetAlias, Param, chain, dag, task

from adclick import approval, candidates, contract, defaults
from adclick_airflow import landings, notify, settings
from adclick_airflow.approval import PromotionApproval
from adclick_airflow.email_operator import TextAndHtmlEmailOperator, run_report

# Reading and checking the largest file allowed takes well under a minute; nothing a user puts
# in the data root may hold the DAG's only run slot for long.
LOAD_DATA_TIMEOUT = timedelta(minutes=2)


def training_params(spec: contract.ModelSpec) -> dict[str, Param]:
    """The DAG's params: data, gate (with `min_accuracy` as its shorthand where the default
    gate is on accuracy), the champion's margin, split and grid.

    Unless `ADCLICK_ALLOW_LOOSER_GATE` is set, their schemas refuse (at trigger time) a gate
    looser than the module's and a negative `min_improvement`."""
    strict = not settings.allow_looser_gate()
    params = {
        "data_path": Param(
            spec.data_path,
            type="string",
            minLength=1,
            description="CSV to train on, relative to the data root (ADCLICK_DATA_DIR).",
        ),
        "gate": Param(
            dict(spec.gate),
            type="object",
            description=(
                'Quality gate: {"metric": NAME, "min": X} or {"metric": NAME, "max": X} for '
                "an error metric. The best candidate is chosen on the same metric."
                f"{' It may only be tightened.' if strict else ''}"
            ),
            **(contract.no_looser_schema(spec.gate) if strict else {}),
        ),
        "min_improvement": Param(
            0.0,
            type="number",
            **({"minimum": 0} if strict else {}),
            description=(
                "How much better than the current champion, on the gate's metric and in its "
                "direction, a model must score on the same hold-out to replace it."
            ),
        ),
        "require_approval": Param(
            False,
            type="boolean",
            description=(
                "Wait for a person to approve (role user, e.g. the approver account) before "
                "a model that would be promoted becomes current."
            ),
        ),
        "approval_timeout": Param(
            approval.DEFAULT_TIMEOUT_HOURS,
            type="number",
            exclusiveMinimum=0,
            description="Hours to wait for that answer; none in time keeps the champion.",
        ),
        "test_size": Param(
            defaults.TEST_SIZE, type="number", exclusiveMinimum=0, exclusiveMaximum=1
        ),
        "random_state": Param(defaults.RANDOM_STATE, type="integer"),
        "candidates": Param(
            candidates.DEFAULT_GRID,
            **candidates.json_schema(),
            description=(
                "Grid of candidate models, one build_model task each: a list of objects "
                f"setting any of {', '.join(spec.hyperparameters) or 'the estimator params'} "
                "or any parameter of the estimator's get_params()."
            ),
        ),
    }
    if spec.gate.get("metric") == "accuracy" and "min" in spec.gate:
        params["min_accuracy"] = Param(
            None,
            type=["null", "number"],
            minimum=spec.gate["min"] if strict else 0,
            maximum=1,
            description='Shorthand of gate {"metric": "accuracy", "min": X}.',
        )
    return params


def chosen_gate(spec: contract.ModelSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The run's gate: `min_accuracy` when set, else `gate`; checked for the model, and
    against the module's gate unless loosening is allowed."""
    if params.get("min_accuracy") is not None:
        gate = contract.check_gate({"metric": "accuracy", "min": params["min_accuracy"]}, spec)
    else:
        gate = contract.check_gate(params["gate"], spec)
    if not settings.allow_looser_gate():
        contract.check_not_looser(gate, spec.gate, float(params["min_improvement"]))
    return gate


def training_dag(spec: contract.ModelSpec) -> Any:
    """The training DAG of one model module."""
    dag_id, name = spec.dag_id, spec.name
    dag_params = training_params(spec)
    # One asset per model, updated only by a promotion: the alias lets load_model emit its
    # event when it promoted and none when it kept the champion. It is also load_model's
    # inlet (it scores the champion), which declares the asset to Airflow: an event through
    # an alias reaches only an asset some DAG declares.
    champion = Asset(name=settings.champion_asset_name(name))
    promotions = AssetAlias(f"{champion.name}_promotions")

    def run_workdir(run_id: str) -> Path:
        return settings.run_workdir(dag_id, run_id)

    def model() -> contract.ModelSpec:
        return settings.load_model_module(name)

    @dag(
        dag_id=dag_id,
        schedule=landings.training_schedule(spec),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        doc_md=f"{__doc__}\n#### Model `{name}` ({spec.display}, {spec.task})\n\n"
        f"{(spec.module.__doc__ or '').strip() if spec.module else ''}",
        tags=["ml", "training", name],
        params=dag_params,
        default_args={
            "owner": "ml-team",
            "retries": 2,
            "retry_delay": timedelta(seconds=5),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=2),
            "execution_timeout": timedelta(minutes=30),
            "on_failure_callback": notify.task_failed,
        },
        on_success_callback=notify.notify_success,
        on_failure_callback=notify.notify_failure,
        user_defined_macros={"run_report": run_report},
    )
    def model_training():
        # A timeout means the file is too big or too wide to check in time: a retry would
        # only hold the run slot again for as long.
        @task(execution_timeout=LOAD_DATA_TIMEOUT, retries=0)
        def load_data(
            params: dict | None = None,
            dag_run=None,
            run_id: str | None = None,
            triggering_asset_events=None,
        ) -> dict:
            """Check the conf, the gate and the grid; validate the CSV named by `data_path`
            (or, in a run started by new data, the file its asset event names) and keep a
            Parquet copy for this run.

            Bad data, a bad grid, or a path that is not a regular file inside the data root
            fails the task at once (no retries): retrying cannot fix a file.
            """
            from adclick import steps
            from adclick_airflow import trigger_conf
            from adclick_airflow.tasks import create_run_workdir, fail_fast

            with fail_fast():
                landed = landings.landed_data_path(triggering_asset_events, name)
                conf = dag_run.conf or {}
                data_path = trigger_conf.dataset_path(params, conf, dag_params, landed)
                spec = model()
                chosen_gate(spec, params)
                grid = candidates.check_candidates(params["candidates"])
                candidates.check_against(spec, grid, int(params["random_state"]))
                workdir = create_run_workdir(dag_id, run_id)
                return steps.ingest_csv(data_path, workdir, spec, root=settings.data_dir())

        @task
        def data_preprocessing(run_id: str | None = None) -> dict:
            """The module's `data_preprocessing`, then the data checks; keep features and
            target."""
            from adclick import steps
            from adclick_airflow.tasks import fail_fast

            with fail_fast():
                return steps.preprocess(run_workdir(run_id), model())

        @task
        def separate_data_outputs(
            params: dict | None = None, run_id: str | None = None
        ) -> list[dict]:
            """Split into a training set and a hold-out set; return the candidates to fit on
            them, one `build_model` task each."""
            from adclick import steps
            from adclick_airflow.tasks import fail_fast

            with fail_fast():
                steps.split_holdout(
                    run_workdir(run_id),
                    model(),
                    test_size=float(params["test_size"]),
                    random_state=int(params["random_state"]),
                )
                return candidates.check_candidates(params["candidates"])

        @task
        def build_model(
            candidate: dict, params: dict | None = None, run_id: str | None = None, ti=None
        ) -> dict:
            """Fit one candidate of the module's model, score it on the hold-out."""
            from adclick import steps
            from adclick_airflow.tasks import fail_fast

            with fail_fast():
                return steps.fit_and_score(
                    run_workdir(run_id),
                    model(),
                    random_state=int(params["random_state"]),
                    candidate=candidate,
                    index=ti.map_index,
                )

        @task(task_id=settings.RESULT_TASK_ID, inlets=[champion], outlets=[promotions])
        def load_model(
            fitted: list[dict],
            params: dict | None = None,
            run_id: str | None = None,
            ti=None,
            outlet_events=None,
        ) -> dict:
            """Pick the best candidate on the gate's metric, reload its saved model once its
            SHA-256 is the one its `build_model` returned, check it, register a new version
            and promote it if it passes the gate and beats the champion.

            With `MLFLOW_TRACKING_URI` set, the run and the model are recorded in MLflow
            first and the `champion` alias moves together with the registry's
            `current.json`. MLflow down or refusing fails the task (retried) and leaves the
            registry as it was. A model below the gate is kept as a rejected version and
            fails the run. A promotion updates the model's champion asset (extra: version,
            metric, score); a run that kept the champion updates nothing.
            """
            from adclick import promotion, steps
            from adclick_airflow.tasks import fail_fast, training_tracker

            workdir = run_workdir(run_id)
            with fail_fast():
                spec = model()
                tracker, context = training_tracker(dag_id, name, run_id, ti.try_number)
                result = steps.register_model(
                    workdir,
                    settings.model_registry_dir(name),
                    spec,
                    chosen_gate(spec, params),
                    run_id=run_id,
                    metadata={"dag_id": dag_id},
                    artifact_root=settings.artifact_dir(),
                    candidates=len(candidates.check_candidates(params["candidates"])),
                    tracker=tracker,
                    context=context,
                    candidate_hashes={int(r["index"]): r.get(steps.FILE_SHA256) for r in fitted},
                    min_improvement=float(params["min_improvement"]),
                    require_approval=bool(params["require_approval"]),
                    approval_timeout_hours=float(params["approval_timeout"]),
                )
            if result["promoted"]:
                outlet_events[promotions].add(champion, extra=promotion.event_extra(result))
            return {**result, "workdir": str(workdir)}

        approve_promotion = PromotionApproval(
            task_id=settings.APPROVAL_TASK_ID,
            doc_md="Wait for a person to approve the model `load_model` left waiting (mailed, "
            "answered in Required actions or by REST); skipped when none waits.",
        )

        def settle(approved: bool, by: str | None, at: str | None, run_id: str, ti) -> dict:
            from adclick import steps
            from adclick_airflow.tasks import fail_fast, training_tracker

            with fail_fast():
                tracker, _ = training_tracker(dag_id, name, run_id, ti.try_number)
                result = steps.settle_approval(
                    run_workdir(run_id),
                    settings.model_registry_dir(name),
                    approved=approved,
                    by=by,
                    at=at,
                    tracker=tracker,
                )
            return {**result, "workdir": str(run_workdir(run_id))}

        @task(outlets=[promotions])
        def promote_approved(run_id: str | None = None, ti=None, outlet_events=None) -> dict:
            """Approved: make the waiting model current and MLflow's champion, together, and
            update the champion asset. Skipped unless a person approved."""
            from adclick import promotion
            from adclick_airflow.approval import answer_of

            answer = answer_of(ti.xcom_pull(task_ids=settings.APPROVAL_TASK_ID))
            result = settle(answer["approved"], answer["by"], answer["at"], run_id, ti)
            if result["promoted"]:
                outlet_events[promotions].add(champion, extra=promotion.event_extra(result))
            return result

        @task(task_id=settings.SETTLED_RESULT_TASK_ID, trigger_rule="none_failed")
        def record_approval(run_id: str | None = None, ti=None) -> dict:
            """Record a rejection or a timeout (the champion stays); return the run's final
            result: `load_model`'s, with the answer and who gave it when one was asked."""
            from adclick_airflow.approval import answer_of

            answer = answer_of(ti.xcom_pull(task_ids=settings.APPROVAL_TASK_ID))
            if answer is None:  # nobody was asked
                return {
                    **(notify.training_result(dag_id, run_id) or {}),
                    "workdir": str(run_workdir(run_id)),
                }
            return settle(answer["approved"], answer["by"], answer["at"], run_id, ti)

        settled_result = f"ti.xcom_pull(task_ids='{settings.SETTLED_RESULT_TASK_ID}')"
        report = f"run_report({settled_result}, dag.dag_id, run_id)"
        send_email = TextAndHtmlEmailOperator(
            task_id="send_email",
            to=[],  # the alert recipients
            subject=f"{{{{ {report}.subject }}}}",
            html_content=f"{{{{ {report}.html }}}}",
            text_content=f"{{{{ {report}.text }}}}",
            retries=1,
            doc_md="Mail the run report: model version, where it is, and its hold-out metrics.",
        )

        trigger_monitor = TriggerDagRunOperator(
            task_id="trigger_monitor",
            trigger_dag_id=settings.MONITOR_DAG_ID,
            conf={"source_run_id": "{{ run_id }}"},
            wait_for_completion=False,
            doc_md="Start the monitor DAG so the Flask service shows this run and is up.",
        )

        grid = separate_data_outputs()
        # A mapped task does not take its docstring as its doc by itself.
        fitted = build_model.override(doc_md=build_model.function.__doc__).expand(candidate=grid)
        registered = load_model(fitted)
        settled = record_approval()
        chain(load_data(), data_preprocessing(), grid, fitted, registered)
        chain(registered, approve_promotion, promote_approved(), settled)
        settled >> send_email >> trigger_monitor

    return model_training()


# Modules that break the contract are reported by model_contracts.py, as import errors.
for _spec in settings.training_models()[0]:
    training_dag(_spec)
