"""Settings of the monitor: defaults, overridden by MONITOR_* environment variables.

Values from the environment are kept as text (a password like ``1e5`` or ``true`` must stay
what it is) and only the few numeric settings are converted, with an error naming the
variable when they are not numbers.
"""

from __future__ import annotations

from typing import Any

from flask import Config

from adclick_contract import (
    AIRFLOW_URL,
    FLASK_MONITOR_SERVICE,
    MONITOR_USERNAME,
    RESULT_TASK_ID,
    TRAINING_DAG_ID,
)
from airflow_rest import DEFAULT_TIMEOUT_S
from airflow_rest.credentials import password_from

DEFAULTS: dict[str, Any] = {
    "AIRFLOW_URL": AIRFLOW_URL,
    "AIRFLOW_USERNAME": MONITOR_USERNAME,
    "AIRFLOW_PASSWORD": "",
    "AIRFLOW_PASSWORD_FILE": "",  # read when AIRFLOW_PASSWORD is empty
    "AIRFLOW_UI_URL": "",  # empty: same as AIRFLOW_URL
    "AIRFLOW_TIMEOUT": DEFAULT_TIMEOUT_S,  # seconds per Airflow call
    "HEALTH_TIMEOUT": 1.0,  # seconds for /health's probe: the watchdog pings with 2 s
    "TRAINING_DAG_ID": TRAINING_DAG_ID,  # the DAG the pages show unless they name a model
    "RESULT_TASK_ID": RESULT_TASK_ID,
    "CACHE_TTL": 2.0,  # seconds an answer from Airflow is shared by every request
    "HISTORY_RUNS": 20,  # runs on the history page and its charts
    # Host names the service answers (Flask's own setting; any other Host header gets 400, so
    # a page on another site cannot read it through DNS rebinding). The environment gives
    # them comma-separated; a leading dot allows a domain's subdomains.
    "TRUSTED_HOSTS": ["127.0.0.1", "localhost", FLASK_MONITOR_SERVICE],
    # Set by the process launcher for each start (adclick_contract.instance): /health then
    # proves to it that this is the service it started. Empty: no proof.
    "INSTANCE_KEY": "",
}
SECONDS = ("AIRFLOW_TIMEOUT", "HEALTH_TIMEOUT", "CACHE_TTL")
MAX_HISTORY_RUNS = 100  # one dagRuns call of Airflow's default page size
ENV_PREFIX = "MONITOR"


def load_config(config: Config, test_config: dict[str, Any] | None) -> None:
    """Defaults, then the environment (or ``test_config`` in tests), then type checks."""
    config.from_mapping(DEFAULTS)
    if test_config is None:
        config.from_prefixed_env(ENV_PREFIX, loads=str)
    else:
        config.update(test_config)
    config["AIRFLOW_PASSWORD"] = password_from(config, "AIRFLOW_PASSWORD", f"{ENV_PREFIX}_")
    for key in SECONDS:
        config[key] = _seconds(key, config[key], allow_zero=key == "CACHE_TTL")
    config["HISTORY_RUNS"] = _count("HISTORY_RUNS", config["HISTORY_RUNS"], MAX_HISTORY_RUNS)
    config["TRUSTED_HOSTS"] = _names("TRUSTED_HOSTS", config["TRUSTED_HOSTS"])
    config["AIRFLOW_URL"] = str(config["AIRFLOW_URL"]).rstrip("/")
    config["AIRFLOW_UI_URL"] = str(config["AIRFLOW_UI_URL"] or config["AIRFLOW_URL"]).rstrip("/")


def _seconds(key: str, value: Any, allow_zero: bool) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not (seconds >= 0 if allow_zero else seconds > 0):  # NaN fails both
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{ENV_PREFIX}_{key} must be a number of seconds {bound}, not {value!r}")
    return seconds


def _names(key: str, value: Any) -> list[str]:
    names = value.split(",") if isinstance(value, str) else list(value or ())
    names = [str(name).strip() for name in names if str(name).strip()]
    if not names:
        raise ValueError(f"{ENV_PREFIX}_{key} must name at least one host")
    return names


def _count(key: str, value: Any, most: int) -> int:
    try:
        count = int(str(value))
    except ValueError:
        count = 0
    if not 1 <= count <= most:
        raise ValueError(
            f"{ENV_PREFIX}_{key} must be a whole number from 1 to {most}, not {value!r}"
        )
    return count
