"""Every environment variable the stacks read: its default and its meaning, declared once.

The Airflow side reads the variables declared with a default through :meth:`Variable.get`;
the other defaults are the constants of the modules that use them, which this list names, and
the Flask monitor's ``MONITOR_*`` ones come from its ``monitor.config``. ``python -m
adclick_airflow.environment`` writes ``docs/configuration.md`` from this list, and a test fails
when the page is stale. An empty value counts as unset, so Compose passes each variable
through (``${NAME:-}``) without restating its default.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from adclick import csvfile, defaults, retention, source
from adclick_airflow import relaunches
from adclick_contract import ALERT_EMAILS as DEFAULT_ALERT_EMAILS
from adclick_contract import (
    FLASK_MONITOR_BIND,
    FLASK_MONITOR_SERVICE,
    FLASK_MONITOR_URL,
)


@dataclass(frozen=True)
class Variable:
    """One environment variable: ``default`` applies when it is unset or empty."""

    name: str
    meaning: str
    default: object = None  # None: no default value (the page shows ``shown`` or a dash)
    shown: str | None = None  # how the page states a default that is not one value

    def get(self) -> str:
        value = os.environ.get(self.name, "").strip()
        return value or ("" if self.default is None else str(self.default))

    @property
    def shown_default(self) -> str:
        if self.shown is not None:
            return self.shown
        return "–" if self.default is None else f"`{self.default}`"


def _seconds(value: float) -> str:
    return f"{value:g}"


ALERT_EMAILS = Variable(
    "ADCLICK_ALERT_EMAILS", "Comma-separated recipients of every mail.", DEFAULT_ALERT_EMAILS
)
TRAINING_SCHEDULE = Variable(
    "ADCLICK_TRAINING_SCHEDULE",
    "Schedule of the ad-click model's training DAG (`none`: trigger only); another model's is "
    "`ADCLICK_<NAME>_TRAINING_SCHEDULE`, with the same default.",
    "@daily",
)
WATCH_LANDINGS = Variable(
    "ADCLICK_WATCH_LANDINGS",
    "`false` stops a CSV landing in the data root (or a batch in `incoming/`) from starting the "
    "ad-click model's runs; another model's is `ADCLICK_<NAME>_WATCH_LANDINGS`. A REST-posted "
    "asset event still starts one.",
    shown="on",
)
LANDING_POLL_S = Variable(
    "ADCLICK_LANDING_POLL_S",
    "Seconds between the triggerer's looks for new files in the data root and the inbox "
    "(at least 0.5).",
    5.0,
)
MONITOR_SCHEDULE = Variable(
    "ADCLICK_MONITOR_SCHEDULE", "Schedule of the ad_click_monitor DAG (`none`: off).", "*/5 * * * *"
)
WATCHDOG_SCHEDULE = Variable(
    "ADCLICK_WATCHDOG_SCHEDULE", "Schedule of the watchdog DAG (`none`: off).", "@continuous"
)
MODEL_SERVER_WATCHDOG_SCHEDULE = Variable(
    "ADCLICK_MODEL_SERVER_WATCHDOG_SCHEDULE",
    "Schedule of the model service's watchdog DAG (`none`: off, as in Compose, where Docker's "
    "restart policy keeps it up).",
    "@continuous",
)
MAINTENANCE_SCHEDULE = Variable(
    "ADCLICK_MAINTENANCE_SCHEDULE", "Schedule of the maintenance DAG (`none`: off).", "@daily"
)
MONITOR_DAG_ID = Variable(
    "ADCLICK_MONITOR_DAG_ID",
    "Id of the ad_click_monitor DAG, which each training run triggers.",
    "ad_click_monitor",
)
FLASK_MONITOR_ADDRESS = Variable(
    "ADCLICK_FLASK_MONITOR_URL",
    "Where people open the Flask monitor; mails link to each run's page there (Compose: "
    "`http://localhost:<FLASK_HOST_PORT>`).",
    FLASK_MONITOR_URL,
)

_STORAGE = (
    Variable(
        "ADCLICK_DATA_DIR",
        "Data root, a folder or an `s3://bucket/prefix` URL (Compose: `s3://adclick/data`); "
        "`data_path` is resolved inside it (in a bucket: same bucket, under the prefix, no `.`, "
        "`..` or empty segment).",
        shown="`<repo>/data`",
    ),
    Variable(
        "ADCLICK_MODEL_DIR",
        "Model registry, a folder or an `s3://` URL (Compose: `s3://adclick/model`).",
        shown="`<repo>/model`",
    ),
    Variable(
        "ADCLICK_ARTIFACT_DIR",
        "Per-run working directories, a folder or an `s3://` URL (Compose: "
        "`s3://adclick/artifacts`).",
        shown="`<repo>/artifacts`",
    ),
    Variable(
        "AWS_ENDPOINT_URL",
        "Where `s3://` roots are; with `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, the keys "
        "to them (read by botocore; the Compose stack sets the endpoint and passes the keys "
        "through `AWS_CONFIG_FILE`).",
    ),
    Variable("OBJECTSTORE_BUCKET", "Compose: the object store's bucket.", shown="`adclick`"),
    Variable(
        "OBJECTSTORE_HOST_PORT",
        "Compose: the S3 port published on `BIND_ADDRESS` (127.0.0.1).",
        shown="`8333`",
    ),
    Variable(
        "S3_ACCESS_KEY_ID",
        "Compose: the object store's one identity (Airflow's), with `S3_SECRET_ACCESS_KEY`.",
        shown="generated",
    ),
)
_DATA = (
    Variable(
        source.MAX_MB_VARIABLE,
        "Largest dataset accepted, in MB (10^6 bytes), by the DAG and the CLI; a larger file is "
        "refused naming its size and the limit.",
        source.DEFAULT_MAX_MB,
    ),
    Variable(
        csvfile.MAX_COLUMNS_VARIABLE,
        "Widest header accepted; a wider one is refused naming the file, the column count and "
        "the limit.",
        csvfile.DEFAULT_MAX_COLUMNS,
    ),
    ALERT_EMAILS,
    TRAINING_SCHEDULE,
    Variable(
        "ADCLICK_ALLOW_LOOSER_GATE",
        "`true` lets a trigger conf loosen the gate below the DAG's default or switch its metric.",
        shown="off",
    ),
    Variable(
        "ADCLICK_MODELS_DIR",
        "The model modules, one training DAG each, deployed with the DAGs; nothing a trigger "
        "conf says can name another.",
        shown="`models/` in the DAGs folder",
    ),
    WATCH_LANDINGS,
    LANDING_POLL_S,
    MONITOR_SCHEDULE,
    WATCHDOG_SCHEDULE,
    MODEL_SERVER_WATCHDOG_SCHEDULE,
    MAINTENANCE_SCHEDULE,
)
_RETENTION = (
    Variable(
        "ADCLICK_RETAIN_RUN_DIRS_DAYS",
        "Days a run's working directory is kept after its last change.",
        retention.DEFAULT_RUN_DIR_DAYS,
    ),
    Variable(
        "ADCLICK_RETAIN_LOGS_DAYS",
        "Days a log file is kept after its last write.",
        retention.DEFAULT_LOG_DAYS,
    ),
    Variable(
        "ADCLICK_RETAIN_MODEL_VERSIONS_DAYS",
        "Days a model version that is not current is kept.",
        retention.DEFAULT_MODEL_VERSION_DAYS,
    ),
    Variable(
        "ADCLICK_KEEP_MODEL_VERSIONS",
        "Newest model versions always kept, whatever their age.",
        retention.DEFAULT_KEEP_MODEL_VERSIONS,
    ),
    Variable(
        "ADCLICK_RETAIN_METADATA_DAYS",
        "Days metadata rows are kept (`airflow db clean`).",
        retention.DEFAULT_METADATA_DAYS,
    ),
    Variable(
        "ADCLICK_METADATA_DB_URL",
        "URL `airflow db clean` uses, or (`ADCLICK_METADATA_DB_URL_CMD`) a command that prints "
        "it, as Airflow's `*_CMD` settings; task processes do not get Airflow's own. Compose "
        "sets the command on the worker only.",
        shown="the stack's database",
    ),
)
_MLFLOW = (
    Variable(
        defaults.TRACKING_URI_ENV,
        "Where training runs, models and scoring batches' drift reports are recorded; unset or "
        "empty: tracking off. MLflow's own `MLFLOW_*` client settings apply (each call gives "
        "up within seconds unless set otherwise).",
        shown="embedded: its server; Compose: `http://mlflow:5000`",
    ),
    Variable(
        "MLFLOW_TRACKING_USERNAME",
        "MLflow's login for the tasks, with `MLFLOW_TRACKING_PASSWORD`; consumers use the "
        "read-only `reader`.",
        shown="the writer `airflow` (generated)",
    ),
    Variable(
        "ADCLICK_MLFLOW_MAX_UPLOAD_MB",
        "MLflow server: larger request bodies get 413 (`docker/mlflow/upload_limit.py`).",
        shown="`64`",
    ),
    Variable(
        defaults.EXPERIMENT_ENV,
        "Experiment of the training runs and drift reports.",
        defaults.DEFAULT_EXPERIMENT,
    ),
    Variable(
        defaults.UI_URL_ENV,
        "Base of the MLflow links in mails and pages.",
        shown="the tracking URI (Compose: `http://localhost:5001`)",
    ),
    Variable(
        "MLFLOW_HOST_PORT",
        "Compose: the MLflow UI's published port.",
        shown="`5001`",
    ),
    Variable(
        "MLFLOW_ARTIFACTS_DESTINATION",
        "Compose: where the MLflow server keeps artifacts (by default the object store's MLflow "
        "bucket, which the server's own keys alone open).",
        shown="`s3://adclick-mlflow/artifacts`",
    ),
    Variable(
        "MLFLOW_ALLOWED_HOSTS",
        "Compose: the Host headers the MLflow server answers (its guard against DNS "
        "rebinding); add the main host's name when workers on other machines record runs.",
        shown="`mlflow:5000,localhost:*,127.0.0.1:*`",
    ),
)
_MONITORING = (
    MONITOR_DAG_ID,
    Variable(
        "AIRFLOW_CONN_SMTP_DEFAULT", "SMTP connection used for every mail.", shown="mail catcher"
    ),
    FLASK_MONITOR_ADDRESS,
    Variable(
        "ADCLICK_FLASK_FLAPPING_RELAUNCHES",
        "More relaunches than this within `ADCLICK_FLASK_FLAPPING_WINDOW_S` (default "
        f'{_seconds(relaunches.DEFAULT_WINDOW_S)} s) send one "flapping" mail per episode.',
        relaunches.DEFAULT_FLAPPING_RELAUNCHES,
    ),
    Variable(
        "ADCLICK_FLASK_RELAUNCH_BACKOFF_S",
        "Seconds before a relaunch: none for the first in the window, then this, doubling up to "
        "`ADCLICK_FLASK_RELAUNCH_MAX_BACKOFF_S` (default "
        f"{_seconds(relaunches.DEFAULT_MAX_BACKOFF_S)}).",
        _seconds(relaunches.DEFAULT_FIRST_BACKOFF_S),
    ),
    Variable(
        "FLASK_MONITOR_BIND",
        "The address gunicorn listens on (the Flask image: `0.0.0.0:5000`).",
        FLASK_MONITOR_BIND,
    ),
    Variable(
        "FLASK_MONITOR_PIDFILE",
        "`process` launcher: the master's pidfile.",
        shown="`$AIRFLOW_HOME/flask-monitor.pid`",
    ),
    Variable(
        "FLASK_MONITOR_LOGFILE",
        "`process` launcher: gunicorn's output.",
        shown="beside the pidfile",
    ),
    Variable(
        "FLASK_MONITOR_PYTHON",
        "`process` launcher: a Python with the monitor package installed.",
        shown="the task's interpreter",
    ),
    Variable("FLASK_MONITOR_LOG_LEVEL", "gunicorn's log level.", shown="`info`"),
    Variable(
        "FLASK_MONITOR_ACCESS_LOG",
        "gunicorn's access log (`-`: the service log); `/metrics` counts requests anyway.",
    ),
)
VARIABLES: tuple[Variable, ...] = _STORAGE + _DATA + _RETENTION + _MLFLOW + _MONITORING


def launcher_variables() -> list[Variable]:
    """How the monitor DAGs start the Flask monitor: defaults of :mod:`flask_launcher`, which
    the settings do not import (it brings an HTTP client)."""
    from flask_launcher import LAUNCHERS
    from flask_launcher.docker import DEFAULT_API_TIMEOUT_S, DEFAULT_DOCKER_HOST, DEFAULT_SELECTOR
    from flask_launcher.health import STOP_TIMEOUT_S

    return [
        Variable(
            "FLASK_LAUNCHER",
            f"How the monitor DAGs (re)start Flask: {' or '.join(f'`{n}`' for n in LAUNCHERS)}.",
            LAUNCHERS[0],
        ),
        Variable(
            "FLASK_MONITOR_HEALTH_URL", "What the monitor DAGs ping.", f"{FLASK_MONITOR_URL}/health"
        ),
        Variable(
            "FLASK_MONITOR_WORKERS",
            "gunicorn gevent workers of the Flask monitor; `FLASK_MONITOR_CONNECTIONS` (default "
            "1000): connections each; request headers must arrive within 5 s.",
            shown="`1`",
        ),
        Variable(
            "FLASK_MONITOR_STOP_TIMEOUT",
            "Seconds a Flask monitor being replaced gets to stop before it is killed.",
            STOP_TIMEOUT_S,
        ),
        Variable(
            "FLASK_MONITOR_CONTAINER",
            "`docker` launcher: container name or label filters.",
            DEFAULT_SELECTOR,
        ),
        Variable(
            "DOCKER_HOST",
            "`docker` launcher: the engine, `tcp://` or `unix://` (Compose: the socket proxy); "
            "`DOCKER_TLS_VERIFY` is refused.",
            DEFAULT_DOCKER_HOST,
        ),
        Variable(
            "DOCKER_API_TIMEOUT",
            "`docker` launcher: seconds per Engine API call.",
            DEFAULT_API_TIMEOUT_S,
        ),
    ]


# The Flask monitor's settings: MONITOR_<key> for each key of monitor.config.DEFAULTS.
MONITOR_MEANINGS = {
    "AIRFLOW_URL": "Airflow the Flask monitor reads.",
    "AIRFLOW_USERNAME": "Read-only (viewer) account the Flask monitor reads Airflow with; "
    "`MONITOR_AIRFLOW_PASSWORD` is its password.",
    "AIRFLOW_PASSWORD": "The viewer account's password.",
    "AIRFLOW_PASSWORD_FILE": "A file holding that password, read when "
    "`MONITOR_AIRFLOW_PASSWORD` is empty.",
    "AIRFLOW_UI_URL": "Base of links to the Airflow UI (empty: `MONITOR_AIRFLOW_URL`).",
    "AIRFLOW_TIMEOUT": "Seconds each call to Airflow may take.",
    "HEALTH_TIMEOUT": "Seconds `/health` waits for Airflow's answer (the watchdog pings with 2 s).",
    "TRAINING_DAG_ID": "Training DAG the Flask monitor's pages show unless they name a model.",
    "RESULT_TASK_ID": "Task whose XCom holds the run's model and metrics.",
    "CACHE_TTL": "Seconds a status answer is reused.",
    "HISTORY_RUNS": "Runs on `/history`.",
    "TRUSTED_HOSTS": "Host names the Flask monitor answers, comma-separated; any other `Host` "
    "gets 400 (DNS rebinding).",
    "INSTANCE_KEY": "The key `/health?challenge=` proves, so a launcher knows it reached the "
    "service it started; set per start by the `process` launcher, never by hand.",
}

HEADER = f"""\
# Configuration

<!-- Written by `python -m adclick_airflow.environment` from
plugins/adclick_airflow/environment.py, flask_monitor/monitor/config.py and
model_server/config.py: edit those. -->

Every setting comes from the environment; an empty value counts as unset. The Compose stack
sets the stack's own values in `docker-compose.yaml` and passes the rest through from `.env`
without restating a default; the embedded stack sets them in `embedded/stack.py`. Airflow's
own settings shared by both stacks are in `config/airflow.cfg`; the Compose stack's secrets are
in [compose.md](compose.md), the ports of the embedded stack are options of
`scripts/run-embedded` ([operations.md](operations.md#the-embedded-stack)).

Names: `MONITOR_*` are the Flask monitor's settings, `FLASK_MONITOR_*` how it is started,
`ADCLICK_MONITOR_*` the ad_click_monitor DAG's (the Compose service is `{FLASK_MONITOR_SERVICE}`).

| Variable | Default | Meaning |
| --- | --- | --- |
"""


def monitor_variables() -> list[Variable]:
    """The Flask monitor's variables, with the defaults its own config declares."""
    from monitor import config

    return [
        Variable(f"{config.ENV_PREFIX}_{key}", meaning, shown=_shown(config.DEFAULTS[key]))
        for key, meaning in MONITOR_MEANINGS.items()
    ]


# The model service's settings: MODEL_SERVER_<key> for each key of model_server.config.DEFAULTS.
MODEL_SERVER_MEANINGS = {
    "MODELS_DIR": "The model contract's modules; one model served per module.",
    "MODEL_ROOT": "The registries' root the model service serves from (a folder or an `s3://` "
    "URL); required.",
    "POLL_INTERVAL": "Seconds between two looks at each registry's `current.json`.",
    "MAX_BODY_BYTES": "The largest request body; a larger one gets 413.",
    "TRUSTED_HOSTS": "Host names the model service answers, comma-separated; any other `Host` "
    "gets 400.",
    "SMTP_HOST": "Where the model service's alert mails go (empty: logged only).",
    "SMTP_PORT": "Port of `MODEL_SERVER_SMTP_HOST`.",
    "SMTP_TIMEOUT": "Seconds an alert mail may take.",
    "MAIL_FROM": "Sender of the model service's alerts.",
    "ALERT_EMAILS": "Recipients of the model service's alerts (Compose: `ADCLICK_ALERT_EMAILS`).",
    "INSTANCE_KEY": "The key `/health?challenge=` proves; set per start by the `process` "
    "launcher, never by hand.",
}
# How gunicorn runs it (model_server/gunicorn.conf.py reads config.GUNICORN_DEFAULTS).
MODEL_SERVER_GUNICORN_MEANINGS = {
    "BIND": "The address the model service listens on.",
    "WORKERS": "gunicorn gevent workers of the model service.",
    "CONNECTIONS": "Connections each model-service worker serves at once.",
    "LOG_LEVEL": "The model service's log level.",
}
MODEL_SERVER_FILES = (
    Variable("MODEL_SERVER_PIDFILE", "Where the model service's master writes its pid."),
    Variable("MODEL_SERVER_ACCESS_LOG", "The model service's access log (`-`: its log)."),
)


def model_server_variables() -> list[Variable]:
    """The model service's variables, with the defaults its own config declares."""
    from model_server import config

    shown = {**config.DEFAULTS, "MODELS_DIR": "dags/models"}
    gunicorn = [
        Variable(f"{config.ENV_PREFIX}_{key}", meaning, config.GUNICORN_DEFAULTS[key])
        for key, meaning in MODEL_SERVER_GUNICORN_MEANINGS.items()
    ]
    return [
        *(
            Variable(f"{config.ENV_PREFIX}_{key}", meaning, shown=_shown(shown[key]))
            for key, meaning in MODEL_SERVER_MEANINGS.items()
        ),
        *gunicorn,
        *MODEL_SERVER_FILES,
    ]


def _shown(value: object) -> str:
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    return f"`{value}`" if value not in ("", None) else "–"


def page() -> str:
    """docs/configuration.md as it should read."""
    rows = [
        *VARIABLES,
        *launcher_variables(),
        *monitor_variables(),
        *model_server_variables(),
    ]
    lines = [f"| `{v.name}` | {v.shown_default} | {v.meaning} |" for v in rows]
    return HEADER + "\n".join(lines) + "\n"


PAGE = Path("docs/configuration.md")
COMMAND = "python -m adclick_airflow.environment"


def main(argv: list[str]) -> int:
    """Write the page (``--check``: only say whether it is current)."""
    target = Path(argv[0]) if argv and argv[0] != "--check" else PAGE
    if "--check" in argv:
        current = target.is_file() and target.read_text(encoding="utf-8") == page()
        print(f"{target}: {'current' if current else 'stale: run ' + COMMAND}")
        return 0 if current else 1
    target.write_text(page(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
