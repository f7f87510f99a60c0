"""Where things live and who gets mail, read from the environment at run time.

Defaults put data, models and artifacts next to the ``dags/`` folder, which is the repository
in the embedded stack and ``/opt/airflow`` in the Compose stack. Each of the three roots may
instead be an ``s3://bucket/prefix`` URL (see :mod:`adclick.storage`).
"""

from __future__ import annotations

import hashlib
import math
import os
import shlex
import string
import subprocess
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from adclick import contract, retention, storage
from adclick_airflow import environment, relaunches
from adclick_contract import (
    APPROVAL_TASK_ID,
    RESULT_TASK_ID,
    SETTLED_RESULT_TASK_ID,
    TRAINING_DAG_ID,
    TRAINING_DAG_SUFFIX,
)
from flask_launcher.services import FLASK_MONITOR, Service

# Re-exported: the DAG files read ids here.
__all__ = ["APPROVAL_TASK_ID", "RESULT_TASK_ID", "SETTLED_RESULT_TASK_ID", "TRAINING_DAG_ID"]
# "Monitor" alone is the Flask service (its package ``monitor``, its MONITOR_* settings, its
# FLASK_MONITOR_* launcher settings); the DAG that keeps it up is ``ad_click_monitor``, whose
# settings are ADCLICK_MONITOR_*.
MONITOR_DAG_ID = environment.MONITOR_DAG_ID.get()
WATCHDOG_DAG_ID = "ad_click_flask_watchdog"
MODEL_SERVER_WATCHDOG_DAG_ID = "model_server_watchdog"
MAINTENANCE_DAG_ID = "ad_click_maintenance"

# The Celery queue only the main host's workers serve (docker/airflow/celery-worker
# --main-host): tasks that need what only that host has, i.e. the socket proxy that relaunches
# Flask, the network the Flask monitor is on, the read-only account's password, the log
# folder and the metadata database the maintenance DAG cleans. Every other task goes to
# Airflow's default queue, which every worker serves, on any host.
MAIN_HOST_QUEUE = "main_host"


def schedule(variable: environment.Variable) -> str | None:
    """A DAG's schedule, overridable per deployment; ``none`` turns scheduling off."""
    value = variable.get()
    return None if value.lower() == "none" else value


def training_schedule(model_name: str) -> str | None:
    """A training DAG's schedule: ``ADCLICK_TRAINING_SCHEDULE`` for the ad-click model,
    ``ADCLICK_<NAME>_TRAINING_SCHEDULE`` for another, with the same default."""
    shared = environment.TRAINING_SCHEDULE
    own = training_schedule_variable(model_name)
    return schedule(environment.Variable(own, shared.meaning, shared.default))


def training_schedule_variable(model_name: str) -> str:
    """The variable that sets ``model_name``'s training schedule."""
    if model_name == contract.DEFAULT_MODEL:
        return environment.TRAINING_SCHEDULE.name
    return f"ADCLICK_{model_name.upper()}_TRAINING_SCHEDULE"


def _dir(variable: str, default: str) -> storage.StoragePath:
    if value := os.environ.get(variable):
        root = storage.location(value)
        return root.resolve() if storage.is_local(root) else root
    from airflow.configuration import conf

    return Path(conf.get("core", "dags_folder")).resolve().parent / default


def data_dir() -> storage.StoragePath:
    return _dir("ADCLICK_DATA_DIR", "data")


def scoring_inbox() -> storage.StoragePath:
    """Where batches to score land: ``incoming/`` under the data root."""
    from adclick.scoring import INCOMING_DIR

    return data_dir() / INCOMING_DIR


def model_dir() -> storage.StoragePath:
    return _dir("ADCLICK_MODEL_DIR", "model")


def artifact_dir() -> storage.StoragePath:
    return _dir("ADCLICK_ARTIFACT_DIR", "artifacts")


def models_dir() -> Path:
    """The model modules, one training DAG each: ``models/`` in the DAGs folder, deployed with
    the DAGs (baked into the image or mounted read-only). ``ADCLICK_MODELS_DIR`` names another
    folder for a deployment; nothing a trigger conf says can."""
    if value := os.environ.get("ADCLICK_MODELS_DIR"):
        return Path(value).resolve()
    from airflow.configuration import conf

    return contract.models_dir_of(Path(conf.get("core", "dags_folder")).resolve())


def model_registry_dir(name: str) -> storage.StoragePath:
    """Model ``name``'s registry folder (see :func:`adclick.contract.registry_dir`)."""
    return contract.registry_dir(model_dir(), name)


def load_model_module(name: str) -> contract.ModelSpec:
    """The checked module of model ``name`` from :func:`models_dir`."""
    return contract.load_named(name, models_dir())


def training_models() -> tuple[list[contract.ModelSpec], list[contract.ContractError]]:
    """Every module of :func:`models_dir`, checked: those that keep the contract (one
    training DAG each) and the errors of those that do not."""
    folder = models_dir()
    specs, errors = [], []
    for path in contract.module_files(folder):
        try:
            specs.append(contract.load_named(path.stem, folder))
        except contract.ContractError as exc:
            errors.append(exc)
    return specs, errors


def model_for_dag(dag_id: str) -> contract.ModelSpec | None:
    """The model a training DAG trains (its name, task, labels, class names), if any."""
    return next((spec for spec in training_models()[0] if spec.dag_id == dag_id), None)


def flask_outage_file(service: Service = FLASK_MONITOR) -> Path:
    """Where an outage of the Flask monitor (or another ``service``: the model service) is
    recorded: a file created with ``O_EXCL``, so
    in the artifacts root when that is a directory every worker shares. An object store has
    no exclusive create: then it stays under the Airflow home of the host whose worker runs
    the relaunch tasks (the one that reaches the Flask service)."""
    root = artifact_dir()
    if not storage.is_local(root):
        from airflow.configuration import AIRFLOW_HOME

        root = Path(AIRFLOW_HOME)
    return root / f"{service.proc_name}-outage.json"


def flask_relaunch_file(service: Service = FLASK_MONITOR) -> Path:
    """A service's recent relaunches (backoff, flapping), beside its outage record."""
    return flask_outage_file(service).with_name(f"{service.proc_name}-relaunches.json")


def relaunch_policy() -> relaunches.RelaunchPolicy:
    """When relaunches of the Flask monitor back off and count as flapping (defaults in
    ``relaunches``): more than ADCLICK_FLASK_FLAPPING_RELAUNCHES relaunches within
    ADCLICK_FLASK_FLAPPING_WINDOW_S seconds alert once; the wait before a relaunch starts at
    ADCLICK_FLASK_RELAUNCH_BACKOFF_S and doubles up to ADCLICK_FLASK_RELAUNCH_MAX_BACKOFF_S."""
    return relaunches.RelaunchPolicy(
        flapping_relaunches=_count(
            "ADCLICK_FLASK_FLAPPING_RELAUNCHES", relaunches.DEFAULT_FLAPPING_RELAUNCHES
        ),
        window_s=_number("ADCLICK_FLASK_FLAPPING_WINDOW_S", relaunches.DEFAULT_WINDOW_S),
        first_backoff_s=_number(
            "ADCLICK_FLASK_RELAUNCH_BACKOFF_S", relaunches.DEFAULT_FIRST_BACKOFF_S
        ),
        max_backoff_s=_number(
            "ADCLICK_FLASK_RELAUNCH_MAX_BACKOFF_S", relaunches.DEFAULT_MAX_BACKOFF_S
        ),
    )


def alert_recipients() -> list[str]:
    raw = environment.ALERT_EMAILS.get()
    return [address.strip() for address in raw.split(",") if address.strip()]


def retention_windows() -> retention.RetentionWindows:
    """How long the maintenance DAG keeps each kind of item (days; defaults in ``retention``)."""
    return retention.RetentionWindows(
        run_dirs=_days("ADCLICK_RETAIN_RUN_DIRS_DAYS", retention.DEFAULT_RUN_DIR_DAYS),
        logs=_days("ADCLICK_RETAIN_LOGS_DAYS", retention.DEFAULT_LOG_DAYS),
        model_versions=_days(
            "ADCLICK_RETAIN_MODEL_VERSIONS_DAYS", retention.DEFAULT_MODEL_VERSION_DAYS
        ),
        keep_model_versions=_count(
            "ADCLICK_KEEP_MODEL_VERSIONS", retention.DEFAULT_KEEP_MODEL_VERSIONS
        ),
        metadata=_days("ADCLICK_RETAIN_METADATA_DAYS", retention.DEFAULT_METADATA_DAYS),
    )


def metadata_db_url() -> str | None:
    """The metadata database the maintenance DAG purges old rows from.

    Task processes are denied Airflow's own database URL on purpose; a deployment that
    wants its metadata purged passes it to the workers under this name, or, like Airflow's
    own ``*_CMD`` settings, a command that prints it (``ADCLICK_METADATA_DB_URL_CMD``).
    """
    url = os.environ.get("ADCLICK_METADATA_DB_URL")
    command = os.environ.get("ADCLICK_METADATA_DB_URL_CMD")
    if not url and command:
        url = subprocess.run(
            shlex.split(command), capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    return url or None


def champion_asset_name(model_name: str) -> str:
    """The Airflow asset a promotion of ``model_name`` updates: schedule a DAG on
    ``Asset(name=...)`` to run on each new champion."""
    return f"{model_name}_champion"


def landing_asset_name(model_name: str) -> str:
    """The Airflow asset a new CSV for ``model_name`` in the data root updates: its training
    DAG runs on it (post an event to it to retrain on demand)."""
    return f"{model_name}_data"


def batch_asset_name(model_name: str) -> str:
    """The Airflow asset a new batch for ``model_name`` in the scoring inbox updates."""
    return f"{model_name}_batches"


def landing_poll_s() -> float:
    """How often the triggerer looks for new files (``ADCLICK_LANDING_POLL_S``)."""
    poll = environment.LANDING_POLL_S
    return max(_number(poll.name, float(str(poll.default))), 0.5)


def watches_landings(model_name: str) -> bool:
    """Whether new files in the data root and the scoring inbox start ``model_name``'s runs:
    ``ADCLICK_WATCH_LANDINGS`` for the ad-click model, ``ADCLICK_<NAME>_WATCH_LANDINGS`` for
    another; on by default. Off, an asset event posted through the REST API still does."""
    shared = environment.WATCH_LANDINGS.name
    if model_name == contract.DEFAULT_MODEL:
        return _flag(shared, default=True)
    return _flag(shared.replace("ADCLICK_", f"ADCLICK_{model_name.upper()}_", 1), default=True)


# Off unless the deployment says so: a trigger conf may then lower the gate below the DAG's
# default and set a negative min_improvement.
ALLOW_LOOSER_GATE_VARIABLE = "ADCLICK_ALLOW_LOOSER_GATE"


def allow_looser_gate() -> bool:
    """Whether a trigger conf may loosen the quality gate (``ADCLICK_ALLOW_LOOSER_GATE``)."""
    return _flag(ALLOW_LOOSER_GATE_VARIABLE, default=False)


def _flag(variable: str, *, default: bool) -> bool:
    raw = os.environ.get(variable, "").strip().lower()
    if not raw:
        return default
    if raw in ("0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{variable}={raw!r} must be true or false")


def _number(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{variable}={raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{variable}={raw!r} must be a number >= 0")
    return value


def _count(variable: str, default: int) -> int:
    value = float(_number(variable, default))
    if not value.is_integer():
        raise ValueError(f"{variable}={os.environ[variable]!r} must be a whole number")
    return int(value)


def _days(variable: str, default: float) -> timedelta:
    return timedelta(days=_number(variable, default))


def monitor_run_url(run_id: str, dag_id: str = TRAINING_DAG_ID) -> str:
    """The Flask monitor's page of one run, as people reach it (links in mails): the default
    training DAG's under /runs/, another model's under /models/<its name>/runs/."""
    base = environment.FLASK_MONITOR_ADDRESS.get().rstrip("/")
    if dag_id != TRAINING_DAG_ID:
        base += f"/models/{quote(dag_id.removesuffix(TRAINING_DAG_SUFFIX), safe='')}"
    return f"{base}/runs/{quote(run_id, safe='')}"


def run_workdir(dag_id: str, run_id: str) -> Path:
    """One working directory per run, always inside the artifacts root.

    Run ids may hold almost anything (``..``, ``a:b``, ``a+b``, a slash), so each id is
    encoded by :func:`path_component`: two runs never share a directory, and none lies
    outside the root.
    """
    return artifact_dir() / path_component(dag_id) / path_component(run_id)


_SAFE_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_.-")
_MAX_COMPONENT = 200  # below every filesystem's 255-byte name limit


def path_component(name: str) -> str:
    """``name`` as one safe file name, injectively.

    Letters, digits, ``_``, ``-`` and ``.`` (except a leading one, so never ``.`` or ``..``)
    stay; every other character becomes ``%XX`` per UTF-8 byte, ``%`` itself included. A name
    that would grow past 200 characters is cut and ends in ``~`` and its SHA-256 instead
    (``~`` is always encoded otherwise, so a cut name cannot equal an uncut one).
    """
    if not name:
        raise ValueError("an empty name cannot be a directory")
    encoded = "".join(
        char
        if char in _SAFE_CHARACTERS and not (index == 0 and char == ".")
        else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        for index, char in enumerate(name)
    )
    if len(encoded) <= _MAX_COMPONENT:
        return encoded
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{encoded[: _MAX_COMPONENT - len(digest) - 1]}~{digest}"
