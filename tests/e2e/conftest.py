"""Fixtures for the Docker Compose end-to-end tests.

These tests need the stack that scripts/e2e-docker brings up: it exports the E2E_* variables
(URLs of the ports it published on 127.0.0.1, the Compose project, DOCKER_HOST of the engine).
Without them every test here is skipped with a pointer to that script.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testkit.compose import ComposeStack, docker, missing_variables
from testkit.mailbox import Mailbox


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not missing_variables():
        return
    skip = pytest.mark.skip(reason="needs the Compose stack: run scripts/e2e-docker")
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def stack() -> ComposeStack:
    return ComposeStack.from_env()


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
