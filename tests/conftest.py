"""Fixtures shared by every test package: the real embedded Airflow stack and its mailbox."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adclick.contract import DEFAULT_MODEL
from adclick_airflow.settings import MONITOR_DAG_ID, TRAINING_DAG_ID
from embedded.mailcatcher import MailCatcher
from embedded.mlflow_server import MlflowServer
from embedded.stack import REPO_ROOT, EmbeddedStack
from testkit import fixture_models
from testkit.datasets import MODELS, SAMPLE_CSV
from testkit.faults import FaultServer
from testkit.mailbox import Mailbox
from testkit.objectstore import ObjectStore, running_weed
from testkit.ports import free_port, free_ports
from testkit.stacks import triggered_runs_only

JWT_LIFETIME_S = 8
# A shared 2-core machine under load can take minutes to boot four Airflow processes.
STACK_START_TIMEOUT_S = 360
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "advertising.csv"


# The MLflow server's first start creates its SQLite schema: slow on a busy machine.
MLFLOW_START_TIMEOUT_S = 240


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One real MLflow tracking server (the embedded stack's kind: SQLite, served artifacts,
    login on) for the whole session, on a free port; the embedded stack records into it too.
    MLflow clients in the tests log in as the tasks do, as its writer account."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"), free_port())
    server.start(MLFLOW_START_TIMEOUT_S)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in server.account("writer").env().items():
                patch.setenv(name, value)
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def embedded_stack(
    tmp_path_factory: pytest.TempPathFactory, mlflow_server: MlflowServer
) -> Iterator[EmbeddedStack]:
    """One real embedded stack (api-server, scheduler, dag-processor, triggerer, SQLite,
    LocalExecutor, mail catcher, and the session's MLflow server) for the whole session, on
    free ports, with its own data, model and artifact directories."""
    root = tmp_path_factory.mktemp("stack")
    data_dir = root / "data"
    data_dir.mkdir()
    shutil.copy(SAMPLE_CSV, data_dir / "advertising.csv")
    # Deployed beside the ad-click model: one fixture model (text labels, a text category,
    # gaps), as a team adds its module to dags/models/.
    models = fixture_models.install(root / "dags" / "models", (fixture_models.EMBEDDED,))
    shutil.copy(MODELS / "adclick.py", models)
    fixture_models.export_csv(fixture_models.EMBEDDED, data_dir)
    stack = EmbeddedStack(
        home=root / "airflow",
        ports=free_ports(),
        model_dir=root / "model",
        data_dir=data_dir,
        models_dir=models,
        mlflow_server=mlflow_server,
        extra_env={
            **triggered_runs_only((DEFAULT_MODEL, fixture_models.EMBEDDED)),
            # Many tests put ad-click CSVs in the data root and trigger their own runs: only
            # the fixture model trains and scores when files land, and its watchers look
            # every second.
            "ADCLICK_WATCH_LANDINGS": "false",
            "ADCLICK_LANDING_POLL_S": "1",
            # Many tests kill the Flask monitor within minutes: relaunches back off, but for
            # seconds, not the minute a real flapping service waits.
            "ADCLICK_FLASK_RELAUNCH_MAX_BACKOFF_S": "8",
            # The session trains a handful of models: keep fewer, so retention has work to do.
            "ADCLICK_KEEP_MODEL_VERSIONS": "1",
            # Short-lived API tokens, so the clients' re-login is exercised for real.
            "AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME": str(JWT_LIFETIME_S),
            "AIRFLOW__API_AUTH__JWT_LEEWAY": "0",
        },
    )
    stack.start(timeout=STACK_START_TIMEOUT_S)
    try:
        stack.wait_for_dags((TRAINING_DAG_ID, MONITOR_DAG_ID))
        stack.mail = Mailbox(stack.mail_url)
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def smtp_catcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[MailCatcher]:
    """A real SMTP server the DAG's mails go to, through the `smtp_default` connection."""
    catcher = MailCatcher(smtp_port=free_port(), http_port=free_port())
    catcher.start()
    connection = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": catcher.smtp_port,
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "airflow@adclick.local"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(connection))
    yield catcher
    catcher.stop()


@pytest.fixture
def mailbox(embedded_stack: EmbeddedStack) -> Mailbox:
    return embedded_stack.mail


@pytest.fixture(scope="session")
def real_dataset() -> Path:
    if not REAL_DATA.exists():
        pytest.skip(f"the public dataset is not at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture
def fault_server() -> Iterator[Callable[[str], FaultServer]]:
    """Start real misbehaving servers (``"silent"`` or ``"html"``); all stopped afterwards."""
    servers: list[FaultServer] = []

    def start(kind: str) -> FaultServer:
        server = FaultServer(kind)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    """One real SeaweedFS S3 server for the session (bucket ``adclick``; identities in
    :func:`testkit.objectstore.running_weed`), stopped at the end."""
    with running_weed(tmp_path_factory.mktemp("weed")) as store:
        yield store


@pytest.fixture
def s3_env(object_store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    """This process reaches the object store as ``writer`` (what the Compose stack's Airflow
    identity may do, no more), through the standard variables."""
    for name, value in object_store.env().items():
        monkeypatch.setenv(name, value)
    return object_store
