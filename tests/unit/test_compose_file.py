"""What the README promises about every Compose service, read from docker-compose.yaml itself
(the e2e stage runs the stack; this keeps the promise visible without an engine)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
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


def image_variable(value: str) -> tuple[str, str]:
    """``${NAME:-default}`` as (NAME, default); fails on anything else."""
    match = re.fullmatch(r"\$\{([A-Z_]+):-([^}]+)\}", value)
    assert match, f"{value!r} is not ${{VARIABLE:-default}}"
    return match.group(1), match.group(2)


def documented_images() -> dict[str, str]:
    """The upstream images `.env` names (``# VARIABLE=image`` lines) as the defaults."""
    text = (REPO_ROOT / ".env").read_text()
    return dict(re.findall(r"^# ([A-Z_]+_IMAGE)=(\S+)$", text, flags=re.MULTILINE))


def locked_version(package: str) -> str:
    text = (REPO_ROOT / "requirements" / "airflow.lock").read_text()
    match = re.search(rf"^{re.escape(package)}==(\S+)", text, flags=re.MULTILINE)
    assert match, f"{package} is not in requirements/airflow.lock"
    return match.group(1)


def test_every_upstream_image_is_a_variable_with_the_real_default(
    services: dict[str, dict],
) -> None:
    documented = documented_images()
    seen = {}
    for name, service in services.items():
        if "build" in service:
            value = next(iter(service["build"].get("args", {}).values()))
        else:
            value = service.get("image", "")
        variable, default = image_variable(value)
        seen[variable] = default
        repository, _, tag = default.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {default} is not pinned by tag"
        assert not re.search(r"local|standin|adclick", default), f"{name}: {default}: local"
        assert documented.get(variable) == default, f"{name}: .env documents {variable} otherwise"
    assert set(seen) == set(documented), "every documented image variable is used, and only those"
    airflow_tag = seen["AIRFLOW_BASE_IMAGE"].rpartition(":")[2]
    assert airflow_tag.startswith(locked_version("apache-airflow") + "-"), airflow_tag


def test_ports_are_published_on_loopback_by_default(services: dict[str, dict]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), f"{name}: {port}"
