"""Where things live and who gets mail, read from the environment at run time.

Defaults put data, models and artifacts next to the ``dags/`` folder, which is the repository
in the embedded stack and ``/opt/airflow`` in the Compose stack.
"""

from __future__ import annotations

import hashlib
import os
import string
from pathlib import Path

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
