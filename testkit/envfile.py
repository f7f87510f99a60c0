"""The Compose env files: reading them, and which of their keys are secrets."""

from __future__ import annotations

from pathlib import Path

SECRET_KEYS = (
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW_MONITOR_PASSWORD",
    "POSTGRES_PASSWORD",
)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a Compose env file (comments and blanks skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values
