"""Fixtures for the Docker Compose end-to-end tests.

These tests need the stack that scripts/e2e-docker brings up: it exports the E2E_* variables
(URLs of the ports it published on 127.0.0.1, the Compose project, DOCKER_HOST of the engine).
Without them every test here is skipped with a pointer to that script.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_rest import AirflowClient
from tests.support.envfile import compose_stack_secrets
from tests.support.mailbox import Mailbox

REQUIRED = ("E2E_AIRFLOW_URL", "E2E_FLASK_URL", "E2E_MAIL_URL", "E2E_DOCKER_PROXY_URL")
TERMINAL = {"success", "failed"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if not missing:
        return
    skip = pytest.mark.skip(reason="needs the Compose stack: run scripts/e2e-docker")
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(skip)


@dataclass
class ComposeStack:
    """The running stack: its URLs, accounts and a way to act on its containers."""

    airflow_url: str
    flask_url: str
    mail_url: str
    proxy_url: str
    project: str
    secrets: dict[str, str]
    scratch_image: str
    compose: list[str]
    data_dir: Path | None
    images: list[str]

    def api(self, role: str = "admin") -> AirflowClient:
        """The project's own REST client, logged in as ``admin`` or the read-only monitor."""
        user, key = (
            ("admin", "AIRFLOW_ADMIN_PASSWORD")
            if role == "admin"
            else (
                "monitor",
                "AIRFLOW_MONITOR_PASSWORD",
            )
        )
        return AirflowClient(self.airflow_url, user, self.secrets[key], timeout=10.0)

    def container_id(self, service: str) -> str:
        """The container of a Compose service, found by its labels on the host engine."""
        out = docker(
            "ps",
            "--all",
            "--quiet",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
        )
        ids = out.split()
        assert len(ids) == 1, f"expected one {service} container, found {ids}"
        return ids[0]


def docker(*args: str) -> str:
    """The docker CLI against the engine the stage started (DOCKER_HOST), for fault injection
    and for test fixtures the socket proxy rightly refuses to create."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


@pytest.fixture(scope="session")
def stack() -> ComposeStack:
    compose = json.loads(os.environ.get("E2E_COMPOSE", '["docker", "compose"]'))
    return ComposeStack(
        airflow_url=os.environ["E2E_AIRFLOW_URL"],
        flask_url=os.environ["E2E_FLASK_URL"],
        mail_url=os.environ["E2E_MAIL_URL"],
        proxy_url=os.environ["E2E_DOCKER_PROXY_URL"],
        project=os.environ.get("E2E_COMPOSE_PROJECT", "adclick-e2e"),
        secrets=compose_stack_secrets(compose),
        scratch_image=os.environ.get("E2E_SCRATCH_IMAGE", "python:3.12-slim"),
        compose=compose,
        data_dir=Path(os.environ["E2E_DATA_DIR"]) if os.environ.get("E2E_DATA_DIR") else None,
        images=os.environ.get("E2E_IMAGES", "").split(),
    )


@pytest.fixture(scope="session")
def mail(stack: ComposeStack) -> Mailbox:
    return Mailbox(stack.mail_url)


@pytest.fixture
def scratch_containers(stack: ComposeStack) -> Iterator[Callable[..., str]]:
    """Factory for throwaway containers (created on the host engine, removed afterwards)."""
    created: list[str] = []

    def make(label: str, *, healthcheck: bool = False, name: str | None = None) -> str:
        args = ["create", "--label", f"adclick.e2e.scratch={label}", "--init"]
        if name:
            args += ["--name", name]
        if healthcheck:
            # Healthy only while /tmp/healthy exists: lets a test make it unhealthy at will.
            args += [
                "--health-cmd",
                "test -f /tmp/healthy",
                "--health-interval",
                "1s",
                "--health-retries",
                "1",
            ]
        container = docker(*args, stack.scratch_image, "sleep", "600")
        created.append(container)
        return container

    yield make
    for container in created:
        subprocess.run(["docker", "rm", "--force", container], capture_output=True, timeout=60)
