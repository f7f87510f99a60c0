"""What the README promises about every Compose service, read from docker-compose.yaml itself
(the e2e stage runs the stack; this keeps the promise visible without an engine)."""

from __future__ import annotations

import pytest
import yaml

from embedded.stack import REPO_ROOT

ONE_SHOT = {"airflow-init"}


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())
    return compose["services"]


def test_every_long_running_service_has_a_health_check_init_and_a_restart_policy(
    services: dict[str, dict],
) -> None:
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name}: no health check"
        assert service.get("init") is True, f"{name}: no init"
        expected = "no" if name in ONE_SHOT else "unless-stopped"
        assert service.get("restart") == expected, f"{name}: restart {service.get('restart')}"


def test_every_upstream_image_is_a_variable_with_the_real_default(
    services: dict[str, dict],
) -> None:
    for name, service in services.items():
        image = service.get("image", "")
        if "build" in service:
            base = next(iter(service["build"].get("args", {}).values()))
            assert base.startswith("${") and ":-" in base, f"{name}: base image {base}"
        else:
            assert image.startswith("${") and ":-" in image, f"{name}: image {image}"


def test_ports_are_published_on_loopback_by_default(services: dict[str, dict]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), f"{name}: {port}"
