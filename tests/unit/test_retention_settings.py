"""Retention windows come from the environment, with the documented defaults, and a bad
value names its variable."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adclick import retention
from adclick_airflow import environment, settings

VARIABLES = (
    "ADCLICK_RETAIN_RUN_DIRS_DAYS",
    "ADCLICK_RETAIN_LOGS_DAYS",
    "ADCLICK_RETAIN_MODEL_VERSIONS_DAYS",
    "ADCLICK_KEEP_MODEL_VERSIONS",
    "ADCLICK_RETAIN_METADATA_DAYS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    assert settings.retention_windows() == retention.RetentionWindows(
        run_dirs=timedelta(days=14),
        logs=timedelta(days=30),
        model_versions=timedelta(days=30),
        keep_model_versions=5,
        metadata=timedelta(days=90),
    )


def test_each_window_is_set_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, name in enumerate(VARIABLES, start=1):
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("ADCLICK_RETAIN_LOGS_DAYS", "0.5")

    windows = settings.retention_windows()

    assert windows.run_dirs == timedelta(days=1)
    assert windows.logs == timedelta(hours=12)
    assert windows.model_versions == timedelta(days=3)
    assert windows.keep_model_versions == 4
    assert windows.metadata == timedelta(days=5)


def test_an_empty_value_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADCLICK_RETAIN_LOGS_DAYS", "")  # what Compose passes when unset
    assert settings.retention_windows().logs == timedelta(days=retention.DEFAULT_LOG_DAYS)


@pytest.mark.parametrize("value", ["a week", "-1", "inf", "nan"])
def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ADCLICK_RETAIN_RUN_DIRS_DAYS", value)
    with pytest.raises(ValueError, match=f"ADCLICK_RETAIN_RUN_DIRS_DAYS={value!r}"):
        settings.retention_windows()


def test_the_maintenance_schedule_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADCLICK_MAINTENANCE_SCHEDULE", "none")
    assert settings.schedule(environment.MAINTENANCE_SCHEDULE) is None


def test_an_empty_schedule_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # Compose passes every variable through, empty when .env does not set it.
    monkeypatch.setenv("ADCLICK_MAINTENANCE_SCHEDULE", "")
    assert settings.schedule(environment.MAINTENANCE_SCHEDULE) == "@daily"


def test_the_number_of_versions_kept_is_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADCLICK_KEEP_MODEL_VERSIONS", "2.5")
    with pytest.raises(ValueError, match=r"ADCLICK_KEEP_MODEL_VERSIONS='2\.5' must be a whole"):
        settings.retention_windows()


def test_the_metadata_url_comes_from_the_variable_or_its_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ADCLICK_METADATA_DB_URL", raising=False)
    monkeypatch.delenv("ADCLICK_METADATA_DB_URL_CMD", raising=False)
    assert settings.metadata_db_url() is None
    monkeypatch.setenv("ADCLICK_METADATA_DB_URL_CMD", "printf postgresql://from-command")
    assert settings.metadata_db_url() == "postgresql://from-command"
    monkeypatch.setenv("ADCLICK_METADATA_DB_URL", "postgresql://from-variable")
    assert settings.metadata_db_url() == "postgresql://from-variable"
