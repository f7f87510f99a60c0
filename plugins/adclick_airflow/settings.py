"""Where things live and who gets mail, read from the environment at run time.

Defaults put data, models and artifacts next to the ``dags/`` folder, which is the repository
in the embedded stack and ``/opt/airflow`` in the Compose stack.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parents[2]

TRAINING_DAG_ID = "ad_click_training"
MONITOR_DAG_ID = os.environ.get("ADCLICK_MONITOR_DAG_ID", "ad_click_monitor")
WATCHDOG_DAG_ID = "ad_click_flask_watchdog"


def schedule(variable: str, default: str) -> str | None:
    """A DAG's schedule, overridable per deployment; ``none`` turns scheduling off."""
    value = os.environ.get(variable, default).strip()
    return None if value.lower() in ("", "none") else value


def _dir(variable: str, default: str) -> Path:
    return Path(os.environ.get(variable) or PROJECT_ROOT / default).resolve()


def data_dir() -> Path:
    return _dir("ADCLICK_DATA_DIR", "data")


def model_dir() -> Path:
    return _dir("ADCLICK_MODEL_DIR", "model")


def artifact_dir() -> Path:
    return _dir("ADCLICK_ARTIFACT_DIR", "artifacts")


def alert_recipients() -> list[str]:
    raw = os.environ.get("ADCLICK_ALERT_EMAILS", "ml-team@adclick.local")
    return [address.strip() for address in raw.split(",") if address.strip()]


def monitor_run_url(run_id: str) -> str:
    """The Flask monitor's page of one run, as people reach it (links in mails)."""
    base = os.environ.get("ADCLICK_MONITOR_URL", "http://127.0.0.1:5000").rstrip("/")
    return f"{base}/runs/{quote(run_id, safe='')}"


def run_workdir(dag_id: str, run_id: str) -> Path:
    """One working directory per run, so two runs never write the same artifacts."""
    safe_run_id = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return artifact_dir() / dag_id / safe_run_id


class ConfError(ValueError):
    """A trigger conf that must be refused before any file is read."""


def resolve_dataset(value: str, root: Path | None = None) -> Path:
    """Map the ``data_path`` param to a file inside the data root, refusing anything outside it.

    Relative values are taken from the data root; absolute ones must already be inside it.
    Symlinks are resolved first, so a link cannot smuggle a path out either.
    """
    root = (root or data_dir()).resolve()
    if not isinstance(value, str) or not value.strip():
        raise ConfError("data_path must be a non-empty string")
    candidate = Path(value)
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise ConfError(f"data_path {value!r} is outside the data root {root}")
    return resolved


def check_conf_keys(conf: dict, allowed: set[str]) -> None:
    """Params do not reject unknown keys; a typo such as ``min_acuracy`` must not pass silently."""
    unknown = sorted(set(conf) - allowed)
    if unknown:
        raise ConfError(
            f"unknown trigger conf key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
