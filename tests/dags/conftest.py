"""In-process Airflow for DAG tests: a throw-away AIRFLOW_HOME with a migrated SQLite database.

Airflow reads its configuration when first imported, so the environment is set here, before
any test module of this folder imports it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from embedded.stack import REPO_ROOT
from testkit import fixture_models
from testkit.datasets import MODELS, SAMPLE_CSV

_HOME = Path(tempfile.mkdtemp(prefix="adclick-dagtest-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
# The models deployed for these tests: the ad-click one and the fixture models, as a team
# adds theirs to dags/models/.
MODELS_DIR = fixture_models.install(_HOME / "dags" / "models")
shutil.copy(MODELS / "adclick.py", MODELS_DIR)
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW_CONFIG": str(REPO_ROOT / "config" / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "ADCLICK_MODELS_DIR": str(MODELS_DIR),
        # The training DAGs' file imports every model module (and scikit-learn with them),
        # which Airflow's components have preloaded and a test process has not; on a busy
        # shared machine that first import can pass the default 30 s.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
    }
)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """A migrated metadata database (what `dag.test()` records runs in)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ,
    )
    yield _HOME


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Data, model and artifact roots for one test, with the project's sample dataset."""
    for variable, name in (
        ("ADCLICK_DATA_DIR", "data"),
        ("ADCLICK_MODEL_DIR", "model"),
        ("ADCLICK_ARTIFACT_DIR", "artifacts"),
    ):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(variable, str(tmp_path / name))
    shutil.copy(SAMPLE_CSV, tmp_path / "data" / "advertising.csv")
    fixture_models.export_all(tmp_path / "data")
    return tmp_path
