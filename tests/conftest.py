"""Fixtures shared by every test package: the real embedded Airflow stack and its mailbox."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from embedded.stack import REPO_ROOT, EmbeddedStack, Ports
from tests.monitor.faults import FaultServer
from tests.support.mailbox import Mailbox

SAMPLE_DATA = REPO_ROOT / "data" / "advertising.csv"
JWT_LIFETIME_S = 8
# A machine busy with other work can take minutes to bring the api-server up.
STACK_START_TIMEOUT_S = 600.0
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "advertising.csv"


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """One real embedded stack (api-server, scheduler, dag-processor, triggerer, SQLite,
    LocalExecutor, mail catcher) for the whole session, on free ports, with its own data,
    model and artifact directories."""
    root = tmp_path_factory.mktemp("stack")
    data_dir = root / "data"
    data_dir.mkdir()
    shutil.copy(SAMPLE_DATA, data_dir / "advertising.csv")
    stack = EmbeddedStack(
        home=root / "airflow",
        ports=Ports.free(),
        model_dir=root / "model",
        data_dir=data_dir,
        # Only the runs a test triggers: a scheduled run landing mid-test would race it.
        extra_env={
            "ADCLICK_TRAINING_SCHEDULE": "none",
            "ADCLICK_MONITOR_SCHEDULE": "none",
            "ADCLICK_WATCHDOG_SCHEDULE": "none",
            # Short-lived API tokens, so the clients' re-login is exercised for real.
            "AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME": str(JWT_LIFETIME_S),
            "AIRFLOW__API_AUTH__JWT_LEEWAY": "0",
        },
    )
    stack.start(timeout=STACK_START_TIMEOUT_S)
    try:
        stack.wait_for_dags(("ad_click_training", "ad_click_monitor"))
        stack.mail = Mailbox(stack.mail_url)
        yield stack
    finally:
        stack.stop()


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
