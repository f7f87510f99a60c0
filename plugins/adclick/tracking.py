"""Experiment tracking and the model registry in MLflow.

One MLflow run per training run, one child run per hyperparameter candidate of a grid, and
every trained model registered as a version of one registered model; and one run per scored
batch's drift report (:meth:`Tracker.record_drift`), in the same experiment. The alias ``champion``
is the registry's answer to "which model is live"; :meth:`Tracker.champion` moves it and puts
it back when what follows (exporting the model to the model directory) fails.

Nothing is adopted because of what it says of itself: anyone who can write to the server can
tag a run with the next training run's id. The ids of the run, the logged model and the
version a try creates are recorded in the run's working directory (``mlflow.json``) as soon
as MLflow returns them; a retry reads them back there and resumes that run. A version's tag
and the alias are set only after the version is checked to be the model this run logged, and
the experiment is the one whose id and artifact location the model's registry folder
recorded when the stack first used it.

Only the MLflow client (``mlflow-skinny``) is needed. Nothing here is imported unless a
tracking URI is configured: without one, training never loads MLflow.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from adclick import defaults, modelfile, storage
from adclick.contract import DEFAULT_MODEL, ModelSpec
from adclick.defaults import (
    DEFAULT_EXPERIMENT,
    EXPERIMENT_ENV,
    TRACKING_URI_ENV,
    UI_URL_ENV,
)
from adclick.errors import ArtifactError, ConfigError, RegistryError, TrackingError
from adclick.workdir import MLFLOW_RECORD, read_record, write_record

DEFAULT_MODEL_NAME = DEFAULT_MODEL  # each model's registered model is named as its module
CHAMPION_ALIAS = "champion"
MODEL_ARTIFACT = "model"
EVALUATION_DIR = "evaluation"
INPUT_EXAMPLE_ROWS = 5
# MLflow stores a dataset digest in at most 36 characters; the full SHA-256 is a run tag.
DIGEST_CHARS = 32

# MLflow's client retries a failed call 7 times over about two minutes, each waiting up to
# 120 s: a task would hold its slot for many minutes before failing. The task's own retries
# (and the next run) cover an outage; each call here fails within seconds. Set any of these
# in the environment to choose otherwise.
CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    # The links are in the result (and the command line's stdout is its JSON summary).
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_PRINT_MODEL_URLS_ON_CREATION": "false",
    **defaults.MLFLOW_NO_TELEMETRY,
}

# Tags naming the training run an MLflow run belongs to.
TAG_DAG_ID = "airflow.dag_id"
TAG_RUN_ID = "airflow.run_id"
TAG_TRY = "airflow.try_number"
TAG_URL = "airflow.run_url"
TAG_DATA_HASH = "data_hash"
TAG_CANDIDATE = "candidate_index"
TAG_GATE = "quality_gate"
TAG_MODEL = "model"
TAG_TASK = "model_task"
TAG_LABELS = "model_labels"  # JSON list, in LABELS order
TAG_MODULE_SHA = "model_sha256"
MODULE_ARTIFACT = "model_module"  # the module file, as the run trained it
EXPERIMENT_RECORD = "mlflow-experiment.json"  # in the model's registry folder
# Where a tracking server that serves artifacts (--serve-artifacts) puts an experiment's: the
# client writes them through the server, never into a local folder someone else chose.
SERVED_ARTIFACTS = "mlflow-artifacts:"
TAG_PROMOTION = "promotion"  # adclick.promotion's decision, on the run and the version
TAG_PROMOTION_REASON = "promotion_reason"
TAG_APPROVAL = "approval"  # adclick.approval's state, on the run and the version
TAG_APPROVED_BY = "approval_by"  # who answered
TAG_CHAMPION_VERSION = "champion_version"  # the registry version compared with
TAG_CHAMPION_MLFLOW_VERSION = "champion_model_version"
CHAMPION_METRIC_PREFIX = "champion_"  # the champion's score on this hold-out
GATE_PASSED = "passed"
GATE_REJECTED = "rejected"
# A scoring batch's drift report: a run of its own in the model's experiment.
TAG_RUN_KIND = "run_kind"
RUN_KIND_SCORING = "scoring_batch"
TAG_MODEL_VERSION = "model_version"  # the registry's version that scored the batch
TAG_DRIFT = "drift"  # "true" when the share reached the threshold
DRIFT_DIR = "drift"  # the report's artifacts
DRIFT_SHARE_METRIC = "drift_share"
DRIFT_SCORE_PREFIX = "drift_score."  # one metric per column: its test's score
DRIFTED_PREFIX = "drifted."  # one per column: 1 when its test found drift


@dataclass(frozen=True)
class TrackingConfig:
    """Where and under which names runs and models are recorded."""

    tracking_uri: str
    experiment: str = DEFAULT_EXPERIMENT
    model_name: str = DEFAULT_MODEL_NAME
    ui_url: str | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, model_name: str = DEFAULT_MODEL_NAME
    ) -> TrackingConfig | None:
        """The configuration from ``MLFLOW_TRACKING_URI`` and friends, registering versions
        of ``model_name`` (a module's name); None when the URI is unset."""
        environ = os.environ if environ is None else environ
        uri = environ.get(TRACKING_URI_ENV, "").strip()
        if not uri:
            return None
        if "/" in model_name or ":" in model_name:
            raise ConfigError(f"model name {model_name!r}: a model name has no '/' or ':'")
        ui_url = environ.get(UI_URL_ENV, "").strip() or None
        if ui_url is None and uri.startswith(("http://", "https://")):
            ui_url = uri
        return cls(
            tracking_uri=uri,
            experiment=environ.get(EXPERIMENT_ENV, "").strip() or DEFAULT_EXPERIMENT,
            model_name=model_name,
            ui_url=ui_url.rstrip("/") if ui_url else None,
        )


@dataclass(frozen=True)
class RunContext:
    """The training run being recorded: what identifies it and where people can see it."""

    run_id: str
    dag_id: str | None = None
    try_number: int = 1
    run_url: str | None = None


@dataclass(frozen=True)
class DatasetRef:
    """The data a model was trained on, as recorded with the run."""

    name: str
    source: str
    sha256: str
    frame: pd.DataFrame = field(repr=False)


@dataclass(frozen=True)
class TrackedModel:
    """What MLflow holds for one trained model (JSON-able through :meth:`as_dict`)."""

    tracking_uri: str
    experiment_id: str
    run_id: str
    model_name: str
    model_version: str
    passed: bool
    model_id: str | None = None
    run_url: str | None = None
    version_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrackedDrift:
    """The MLflow run holding a scoring batch's drift report (JSON-able through
    :meth:`as_dict`)."""

    tracking_uri: str
    experiment_id: str
    run_id: str
    run_url: str | None = None
    report_url: str | None = None  # the HTML report among the run's artifacts

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# MLflow's own variables for its process-wide URIs, which set_tracking_uri exports.
URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


class Tracker:
    """Records training runs in one MLflow tracking server (or any URI MLflow accepts)."""

    def __init__(self, config: TrackingConfig) -> None:
        # Before the import: MLflow starts its usage reporting as it is imported.
        for name, value in CLIENT_DEFAULTS.items():
            os.environ.setdefault(name, value)
        import mlflow
        from mlflow import MlflowClient

        self.config = config
        self._mlflow = mlflow
        # The fluent API (start_run, log_model) reads the process-wide URI; a task process and
        # the command line each talk to one server only.
        # set_tracking_uri also exports MLFLOW_*_URI to the process environment, where every
        # later subprocess would inherit it: keep the environment as it was.
        exported = {name: os.environ.get(name) for name in URI_VARIABLES}
        mlflow.set_tracking_uri(config.tracking_uri)
        mlflow.set_registry_uri(config.tracking_uri)
        for name, previous in exported.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
        self.client = MlflowClient(config.tracking_uri, config.tracking_uri)

    @contextlib.contextmanager
    def _calling(self, action: str) -> Iterator[None]:
        """Turn any failure of MLflow (down, refusing, a bad URI) into a :class:`TrackingError`
        that names the server and what was being done."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except (MlflowException, OSError, ValueError) as exc:
            raise TrackingError(self.config.tracking_uri, action, exc) from exc
        except Exception as exc:  # requests' errors and the like, from inside the client
            if type(exc).__module__.split(".")[0] in {"requests", "urllib3", "sqlalchemy"}:
                raise TrackingError(self.config.tracking_uri, action, exc) from exc
            raise

    def record(
        self,
        *,
        context: RunContext,
        spec: ModelSpec,
        fitted: Any,
        holdout: pd.DataFrame,
        metrics: Mapping[str, Any],
        params: Mapping[str, Any],
        dataset: DatasetRef,
        candidates: Sequence[Mapping[str, Any]],
        passed: bool,
        workdir: storage.StoragePath,
        registry_dir: storage.StoragePath,
        promotion: Mapping[str, Any] | None = None,
    ) -> TrackedModel:
        """Log the run (params, metrics, dataset, evaluation charts, child runs, the model) and
        register the model as a new version tagged with the gate's verdict and the
        ``promotion`` decision (whose champion score is logged as ``champion_<metric>``).

        The ids MLflow returns are recorded in ``workdir`` (``mlflow.json``) and only those
        are resumed on a retry; the experiment's id is recorded in ``registry_dir`` (see
        :meth:`_experiment_id`). The alias does not move here; see :meth:`champion`. Raises
        :class:`TrackingError`, and :class:`ArtifactError` when what the server holds under
        a recorded id is not what this stack wrote there.
        """
        mlflow = self._mlflow
        with self._calling("find the experiment"):
            experiment_id = self._experiment_id(registry_dir)
        state = read_record(workdir, MLFLOW_RECORD)
        if state.get("experiment_id") != experiment_id:
            state = {}
        existing = state.get("run_id")
        tags = {
            TAG_RUN_ID: context.run_id,
            TAG_TRY: str(context.try_number),
            TAG_DATA_HASH: dataset.sha256,
            **({TAG_DAG_ID: context.dag_id} if context.dag_id else {}),
            **({TAG_URL: context.run_url} if context.run_url else {}),
            TAG_GATE: GATE_PASSED if passed else GATE_REJECTED,
            **model_tags(spec),
            **promotion_tags(promotion),
        }
        with self._calling("start the run"):
            run = mlflow.start_run(
                run_id=existing,
                experiment_id=None if existing else experiment_id,
                run_name=None if existing else context.run_id,
                tags=None if existing else tags,
            )
        # Outermost, so a failure to end the run (the server gone) is reported the same way.
        with self._calling("log the run"), run, _quiet():
            run_id = run.info.run_id
            if not existing:
                state = write_record(
                    workdir, MLFLOW_RECORD, {"experiment_id": experiment_id, "run_id": run_id}
                )
            if existing:
                mlflow.set_tags(tags)
            mlflow.log_params(_loggable(params))
            mlflow.log_input(
                mlflow.data.from_pandas(
                    dataset.frame,
                    source=dataset.source,
                    targets=spec.target,
                    name=dataset.name,
                    digest=dataset.sha256[:DIGEST_CHARS],
                ),
                context="training",
            )
            _log_evaluation(mlflow, _evaluation_documents(spec, fitted, holdout, metrics))
            mlflow.log_artifact(str(spec.path), MODULE_ARTIFACT)
            state = self._log_candidates(experiment_id, run_id, candidates, workdir, state)
            gate = GATE_PASSED if passed else GATE_REJECTED
            version_tags = {TAG_GATE: gate, **promotion_tags(promotion)}
            if state.get("version") and state.get("model_id"):
                version, model_id = state["version"], state["model_id"]
                self._check_version(version, model_id, run_id)
                for key, value in version_tags.items():
                    self.client.set_model_version_tag(self.config.model_name, version, key, value)
            else:
                version, model_id = self._log_and_register(
                    spec, fitted, holdout, {**version_tags, **model_tags(spec)}
                )
                state = write_record(
                    workdir, MLFLOW_RECORD, {**state, "model_id": model_id, "version": version}
                )
            # After the model, naming it: logged before, log_model would link them itself by
            # reading back each metric's history (one request per metric).
            mlflow.log_metrics(_scalar_metrics(metrics), model_id=model_id)
            if promotion and promotion.get("champion_score") is not None:
                mlflow.log_metric(
                    CHAMPION_METRIC_PREFIX + promotion["metric"], promotion["champion_score"]
                )
        return TrackedModel(
            tracking_uri=self.config.tracking_uri,
            experiment_id=experiment_id,
            run_id=run_id,
            model_name=self.config.model_name,
            model_version=version,
            passed=passed,
            model_id=model_id,
            run_url=self._ui(f"#/experiments/{experiment_id}/runs/{run_id}"),
            version_url=self._ui(f"#/models/{self.config.model_name}/versions/{version}"),
        )

    @contextlib.contextmanager
    def champion(self, tracked: TrackedModel) -> Iterator[None]:
        """Point ``champion`` at ``tracked``'s version for the duration of the block, and back
        at the previous champion (or nowhere) if the block raises.

        Used around the export to the model directory, so the alias and ``model/`` move
        together or not at all. The alias moves only to a version whose source is the model
        ``tracked`` logged, in its run (:class:`ArtifactError` otherwise).
        """
        name = self.config.model_name
        with self._calling(f"read version {tracked.model_version}"):
            self._check_version(tracked.model_version, tracked.model_id, tracked.run_id)
        with self._calling("read the champion alias"):
            previous = self._champion_version()
        with self._calling(f"move the {CHAMPION_ALIAS} alias to version {tracked.model_version}"):
            self.client.set_registered_model_alias(name, CHAMPION_ALIAS, tracked.model_version)
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                if previous is None:
                    self.client.delete_registered_model_alias(name, CHAMPION_ALIAS)
                else:
                    self.client.set_registered_model_alias(name, CHAMPION_ALIAS, previous)
            raise

    def tag(self, tracked: TrackedModel, tags: Mapping[str, str]) -> None:
        """Set ``tags`` on ``tracked``'s run and on its model version (what happened after
        they were recorded, e.g. a person's answer)."""
        with self._calling(f"tag run {tracked.run_id} and version {tracked.model_version}"):
            self._check_version(tracked.model_version, tracked.model_id, tracked.run_id)
            for key, value in tags.items():
                self.client.set_tag(tracked.run_id, key, value)
                self.client.set_model_version_tag(
                    self.config.model_name, tracked.model_version, key, value
                )

    def record_drift(
        self,
        *,
        context: RunContext,
        report: Mapping[str, Any],
        registry_dir: storage.StoragePath,
    ) -> TrackedDrift:
        """A run in the model's experiment (see :meth:`_experiment_id`) for one scoring
        batch's drift ``report`` (what :func:`adclick.drift.report_batch` returns): tagged as
        a scoring batch of the model version that scored it, with the metrics
        ``drift_share``, ``drift_score.<column>`` and ``drifted.<column>``, the threshold and
        the rows compared as params, and the report's HTML and JSON under ``drift/``.

        Each call makes a new run; one that fails on the way is ended as FAILED. Raises
        :class:`TrackingError` (the report and the predictions stay as they are), and
        :class:`ArtifactError` when the report's files cannot be read.
        """
        with self._calling("find the experiment"):
            experiment_id = self._experiment_id(registry_dir)
        files = _report_files(report)
        tags = {
            TAG_RUN_KIND: RUN_KIND_SCORING,
            TAG_RUN_ID: context.run_id,
            TAG_TRY: str(context.try_number),
            **({TAG_DAG_ID: context.dag_id} if context.dag_id else {}),
            **({TAG_URL: context.run_url} if context.run_url else {}),
            **({TAG_MODEL: str(report["model"])} if report.get("model") else {}),
            TAG_MODEL_VERSION: str(report["model_version"]),
            TAG_DRIFT: "true" if report["drift"] else "false",
        }
        with self._calling("start the drift report's run"):
            run_id = self.client.create_run(
                experiment_id, tags=tags, run_name=f"{context.run_id} drift"
            ).info.run_id
        with self._calling(f"log the drift report in run {run_id}"):
            try:
                self.client.log_batch(
                    run_id,
                    metrics=_metric_entities(drift_metrics(report)),
                    params=_param_entities(
                        {
                            "drift_threshold": report["threshold"],
                            "rows": report.get("rows"),
                            "compared_rows": report.get("compared_rows"),
                            "reference_rows": report.get("reference_rows"),
                        }
                    ),
                )
                with tempfile.TemporaryDirectory(prefix="adclick-drift-") as folder:
                    for name, data in files.items():
                        (Path(folder) / name).write_bytes(data)
                    self.client.log_artifacts(run_id, folder, DRIFT_DIR)
                self.client.set_terminated(run_id)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.client.set_terminated(run_id, "FAILED")
                raise
        html_name = storage.location(report["html"]).name
        run_page = f"#/experiments/{experiment_id}/runs/{run_id}"
        return TrackedDrift(
            tracking_uri=self.config.tracking_uri,
            experiment_id=experiment_id,
            run_id=run_id,
            run_url=self._ui(run_page),
            report_url=self._ui(f"{run_page}/artifacts/{DRIFT_DIR}/{html_name}"),
        )

    def _experiment_id(self, registry_dir: storage.StoragePath) -> str:
        """The experiment this model's runs go to: the one whose id ``registry_dir`` recorded
        (found by id, so renaming it and creating another of the name changes nothing), with
        the artifact location recorded then. Recorded on first use: the experiment the stack
        creates, or one of that name already there whose artifacts the server serves."""
        recorded = _model_dir_io(registry_dir, "read", read_record, EXPERIMENT_RECORD)
        mine = {"tracking_uri": self.config.tracking_uri, "experiment": self.config.experiment}
        if recorded.get("experiment_id") and all(recorded.get(k) == v for k, v in mine.items()):
            experiment = self.client.get_experiment(recorded["experiment_id"])
            if experiment.artifact_location != recorded.get("artifact_location"):
                raise ArtifactError(
                    f"MLflow experiment {experiment.experiment_id}: artifact location "
                    f"{experiment.artifact_location} is not {recorded.get('artifact_location')},"
                    f" as recorded in {EXPERIMENT_RECORD} when it was created; not writing there"
                )
            if experiment.lifecycle_stage != "active":
                raise ArtifactError(
                    f"MLflow experiment {experiment.experiment_id} ({experiment.name}) is "
                    f"{experiment.lifecycle_stage}; restore it or remove {EXPERIMENT_RECORD}"
                )
            return experiment.experiment_id
        named = self.client.get_experiment_by_name(self.config.experiment)
        if named is None:
            experiment = self.client.get_experiment(
                self.client.create_experiment(self.config.experiment)
            )
        elif self._served() and not named.artifact_location.startswith(SERVED_ARTIFACTS):
            raise ArtifactError(
                f"MLflow experiment {self.config.experiment} ({named.experiment_id}): "
                f"artifact location {named.artifact_location} is not served by the "
                "tracking server; not writing there"
            )
        else:
            experiment = named
        record = {
            **mine,
            "experiment_id": experiment.experiment_id,
            "artifact_location": experiment.artifact_location,
        }
        _model_dir_io(registry_dir, "write", _create_record, EXPERIMENT_RECORD, record)
        return experiment.experiment_id

    def _served(self) -> bool:
        return self.config.tracking_uri.startswith(("http://", "https://"))

    def _check_version(self, version: str, model_id: str | None, run_id: str) -> None:
        """Refuse a version that is not the model ``model_id`` this stack logged in
        ``run_id``: its tag and the alias say "this model passed", of that model only."""
        found = self.client.get_model_version(self.config.model_name, version)
        expected = f"models:/{model_id}"
        if not model_id or found.source != expected or found.run_id != run_id:
            raise ArtifactError(
                f"MLflow model {self.config.model_name} version {version}: source "
                f"{found.source} of run {found.run_id} is not {expected} logged by run "
                f"{run_id}; not tagging or promoting it"
            )

    def _log_candidates(
        self,
        experiment_id: str,
        parent_id: str,
        candidates: Sequence[Mapping[str, Any]],
        workdir: storage.StoragePath,
        state: dict[str, Any],
    ) -> dict[str, Any]:
        """One child run per candidate of a grid, each written once even when the task is
        retried: a child's id is recorded in ``mlflow.json`` once it is complete, so a run
        someone else tagged as a child of this one never stands in for it. A single
        candidate is the run itself: its params and metrics are the run's."""
        if len(candidates) < 2:
            return state
        done = dict(state.get("candidates") or {})
        for position, candidate in enumerate(candidates):
            index = str(candidate.get("index", position))
            if index in done:
                continue
            child = self.client.create_run(
                experiment_id,
                tags={"mlflow.parentRunId": parent_id, TAG_CANDIDATE: index},
                run_name=f"candidate-{index}",
            )
            self.client.log_batch(
                child.info.run_id,
                metrics=_metric_entities(candidate.get("metrics", {})),
                params=_param_entities(candidate.get("params", {})),
            )
            self.client.set_terminated(child.info.run_id)
            done[index] = child.info.run_id
            state = write_record(workdir, MLFLOW_RECORD, {**state, "candidates": done})
        return state

    def _log_and_register(
        self, spec: ModelSpec, fitted: Any, holdout: pd.DataFrame, tags: Mapping[str, str]
    ) -> tuple[str, str | None]:
        import mlflow.sklearn
        from mlflow.models import infer_signature

        # The raw feature columns with their dtypes as read from the CSV: the registered
        # model takes pd.read_csv(path) as it is, and answers in the CSV's labels.
        example = holdout[list(spec.features)].head(INPUT_EXAMPLE_ROWS)
        # skops, which runs no code when loaded, wherever the model allows it: its types
        # trusted by name, as the registry's own file is (adclick.modelfile).
        trusted_types = modelfile.skops_trusted_types(fitted)
        skops = trusted_types is not None
        info = mlflow.sklearn.log_model(
            fitted,
            name=MODEL_ARTIFACT,
            signature=infer_signature(example, fitted.predict(example)),
            input_example=example,
            # Named, not inferred: inference imports the model in a subprocess (seconds).
            pip_requirements=_pip_requirements(skops),
            serialization_format=(
                mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS
                if skops
                else mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE
            ),
            skops_trusted_types=trusted_types,
        )
        # Creates the registered model on first use; the version links to the run and the
        # logged model, and carries its tags from the start.
        version = self._mlflow.register_model(
            info.model_uri, self.config.model_name, tags=dict(tags)
        )
        return str(version.version), info.model_id

    def _champion_version(self) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(
                self.client.get_model_version_by_alias(
                    self.config.model_name, CHAMPION_ALIAS
                ).version
            )
        except MlflowException as exc:
            if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                return None
            raise

    def _ui(self, fragment: str) -> str | None:
        return f"{self.config.ui_url}/{fragment}" if self.config.ui_url else None


def promotion_tags(promotion: Mapping[str, Any] | None) -> dict[str, str]:
    """The decision, its reason and the champion compared with, as MLflow tags."""
    if not promotion:
        return {}
    tags = {
        TAG_PROMOTION: promotion["decision"],
        TAG_PROMOTION_REASON: promotion["reason"][:5000],
        TAG_CHAMPION_VERSION: promotion.get("champion_version"),
        TAG_CHAMPION_MLFLOW_VERSION: promotion.get("champion_mlflow_version"),
    }
    return {key: str(value) for key, value in tags.items() if value is not None}


def approval_tags(approval: Mapping[str, Any] | None) -> dict[str, str]:
    """A person's answer (see :mod:`adclick.approval`) as MLflow tags."""
    if not approval:
        return {}
    tags = {TAG_APPROVAL: approval.get("state"), TAG_APPROVED_BY: approval.get("by")}
    return {key: str(value) for key, value in tags.items() if value is not None}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow warns about things this model does on purpose (integer class labels in the
    signature, a dataset source given as a local path); keep task logs to what matters."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\.")
        yield


def _log_evaluation(mlflow: Any, documents: Mapping[str, Any]) -> None:
    """The evaluation documents as JSON files under ``evaluation/`` of the active run, in one
    upload (``log_dict`` would look the run up again for each)."""
    import json

    with tempfile.TemporaryDirectory(prefix="adclick-evaluation-") as folder:
        for name, document in documents.items():
            (Path(folder) / name).write_text(json.dumps(document, indent=2))
        mlflow.log_artifacts(folder, EVALUATION_DIR)


def _create_record(registry_dir: storage.StoragePath, name: str, record: dict) -> None:
    storage.location(registry_dir).mkdir(parents=True, exist_ok=True)
    write_record(registry_dir, name, record)


def _model_dir_io(registry_dir: storage.StoragePath, action: str, io: Any, *args: Any) -> Any:
    """``io(registry_dir, *args)``; a failure is the model directory's (not MLflow's), so
    it is reported as such."""
    try:
        return io(registry_dir, *args)
    except OSError as exc:
        raise RegistryError(registry_dir, f"{action} {args[0]}", exc) from exc


def tracker_from_env(
    environ: Mapping[str, str] | None = None, model_name: str = DEFAULT_MODEL_NAME
) -> Tracker | None:
    """A :class:`Tracker` for ``MLFLOW_TRACKING_URI`` registering versions of
    ``model_name``, or None (tracking off) when unset."""
    config = TrackingConfig.from_env(environ, model_name)
    return Tracker(config) if config else None


def model_params(fitted: Any) -> dict[str, Any]:
    """The classifier's hyperparameters that have plain values (what a candidate varies)."""
    estimator = fitted.steps[-1][1] if hasattr(fitted, "steps") else fitted
    return {
        k: v
        for k, v in estimator.get_params(deep=False).items()
        if v is None or isinstance(v, str | int | float | bool)
    }


def dataset_ref(source: str | Path, sha256: str, frame: pd.DataFrame) -> DatasetRef:
    return DatasetRef(name=Path(source).name, source=str(source), sha256=sha256, frame=frame)


def _loggable(params: Mapping[str, Any]) -> dict[str, str]:
    return {k: "None" if v is None else str(v) for k, v in params.items()}


def model_tags(spec: ModelSpec) -> dict[str, str]:
    """What the run and the version say of the model: name, task, labels, module hash."""
    import json

    return {
        TAG_MODEL: spec.name,
        TAG_TASK: spec.task,
        TAG_LABELS: json.dumps(list(spec.labels) if spec.labels is not None else None),
        TAG_MODULE_SHA: spec.sha256,
    }


def _scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Every number of ``metrics``; a 2x2 matrix as its four counts, per-class precision and
    recall as ``precision.<label>`` and ``recall.<label>``."""
    scalars = {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    matrix = metrics.get("confusion_matrix")
    if matrix and len(matrix) == 2:
        (tn, fp), (fn, tp) = matrix
        scalars.update(true_negatives=tn, false_positives=fp, false_negatives=fn, true_positives=tp)
    for label, figures in (metrics.get("per_class") or {}).items():
        name = _metric_name(label)
        for key, value in figures.items():
            scalars[f"{key}.{name}"] = float(value)
    return scalars


def drift_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """A drift report's numbers: ``drift_share``, and per column ``drift_score.<column>``
    (its test's score, when finite) and ``drifted.<column>`` (1 or 0)."""
    metrics = {DRIFT_SHARE_METRIC: float(report["share"])}
    for column, result in (report.get("columns") or {}).items():
        name = _metric_name(column)
        if isinstance(result.get("score"), int | float):
            metrics[DRIFT_SCORE_PREFIX + name] = float(result["score"])
        metrics[DRIFTED_PREFIX + name] = 1.0 if result.get("drifted") else 0.0
    return metrics


def _metric_name(label: object) -> str:
    """``label`` in the characters MLflow allows in a metric's name."""
    return re.sub(r"[^A-Za-z0-9_./ -]", "_", str(label))


def _report_files(report: Mapping[str, Any]) -> dict[str, bytes]:
    """The report's HTML and JSON files by name, read before anything is sent to MLflow."""
    files = {}
    for key in ("html", "json"):
        path = storage.location(report[key])
        try:
            files[path.name] = path.read_bytes()
        except storage.errors(path) as exc:
            raise ArtifactError(f"drift report {path}: cannot read it: {exc}") from exc
    return files


def _metric_entities(metrics: Mapping[str, Any]) -> list:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, v, now, 0) for k, v in _scalar_metrics(metrics).items()]


def _param_entities(params: Mapping[str, Any]) -> list:
    from mlflow.entities import Param

    return [Param(k, v) for k, v in _loggable(params).items()]


def _evaluation_documents(
    spec: ModelSpec, fitted: Any, holdout: pd.DataFrame, metrics: Mapping[str, Any]
) -> dict[str, Any]:
    """A classifier's confusion matrix (rows the true class, columns the predicted one, in
    ``labels`` order) and a binary one's ROC curve; nothing of the kind for a regression."""
    from adclick.model import positive_scores

    documents: dict[str, Any] = {}
    if spec.labels is not None:
        documents["confusion_matrix.json"] = {
            "labels": list(spec.labels),
            "class_names": spec.class_names,
            "matrix": metrics["confusion_matrix"],
        }
    scores = positive_scores(spec, fitted, holdout[list(spec.features)])
    if scores is not None:
        documents["roc_curve.json"] = _roc_curve(spec, holdout[spec.target].to_numpy(), scores)
    return documents


def _roc_curve(spec: ModelSpec, truth: Any, scores: Any) -> dict[str, Any]:
    from sklearn.metrics import roc_curve

    positive = (spec.labels or ())[1]
    if len(set(truth.tolist())) < 2:
        return {"fpr": [], "tpr": [], "thresholds": [], "note": "one class only in the hold-out"}
    fpr, tpr, thresholds = roc_curve(truth == positive, scores)
    return {
        "positive_label": positive,
        "fpr": fpr.round(6).tolist(),
        "tpr": tpr.round(6).tolist(),
        # The first threshold is +inf by construction; JSON has no infinity.
        "thresholds": [None, *thresholds[1:].round(6).tolist()],
    }


def _pip_requirements(skops: bool) -> list[str]:
    import importlib.metadata as metadata

    names = ("scikit-learn", "pandas", "numpy", "scipy", *(("skops",) if skops else ()))
    return [f"{name}=={metadata.version(name)}" for name in names]
