"""Settings the test suite's embedded stacks share."""

from __future__ import annotations

from collections.abc import Iterable

from adclick_airflow import environment
from adclick_airflow.settings import training_schedule_variable

SCHEDULES = (
    environment.MONITOR_SCHEDULE,
    environment.WATCHDOG_SCHEDULE,
    environment.MODEL_SERVER_WATCHDOG_SCHEDULE,
    environment.MAINTENANCE_SCHEDULE,
)


def triggered_runs_only(models: Iterable[str]) -> dict[str, str]:
    """Every schedule off, the training DAGs of ``models`` included: only the runs a test
    triggers happen (a scheduled run landing mid-test would race it). A shared machine under
    load may take longer than Airflow's default 30 s to import the training DAGs' file, which
    imports every model module: the DAGs would vanish."""
    return {
        **{training_schedule_variable(model): "none" for model in models},
        **{variable.name: "none" for variable in SCHEDULES},
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "150",
    }
