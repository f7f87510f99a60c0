"""The Compose stack scripts/e2e-docker brought up, as its E2E_* variables describe it: its
URLs, accounts, and the docker CLI against its engine (DOCKER_HOST)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from airflow_rest import AirflowClient
from testkit.envfile import compose_stack_secrets

# The stack's bucket (docker-compose.yaml's OBJECTSTORE_BUCKET default).
BUCKET = os.environ.get("OBJECTSTORE_BUCKET", "adclick")
REQUIRED = ("E2E_AIRFLOW_URL", "E2E_FLASK_URL", "E2E_MAIL_URL", "E2E_DOCKER_PROXY_URL")

# Per REST call: a stack just up may keep a request waiting while an api-server worker warms up.
API_TIMEOUT_S = 60.0


def missing_variables() -> list[str]:
    """The E2E_* variables without which there is no stack to talk to."""
    return [name for name in REQUIRED if not os.environ.get(name)]


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
    images: list[str]

    @classmethod
    def from_env(cls) -> ComposeStack:
        compose = json.loads(os.environ.get("E2E_COMPOSE", '["docker", "compose"]'))
        return cls(
            airflow_url=os.environ["E2E_AIRFLOW_URL"],
            flask_url=os.environ["E2E_FLASK_URL"],
            mail_url=os.environ["E2E_MAIL_URL"],
            proxy_url=os.environ["E2E_DOCKER_PROXY_URL"],
            project=os.environ.get("E2E_COMPOSE_PROJECT", "adclick-e2e"),
            secrets=compose_stack_secrets(compose),
            scratch_image=os.environ.get("E2E_SCRATCH_IMAGE", "python:3.12-slim"),
            compose=compose,
            images=os.environ.get("E2E_IMAGES", "").split(),
        )

    def api(self, role: str = "admin", timeout: float = API_TIMEOUT_S) -> AirflowClient:
        """The project's own REST client, logged in as ``admin``, ``approver`` or the
        read-only monitor."""
        user, key = {
            "admin": ("admin", "AIRFLOW_ADMIN_PASSWORD"),
            "approver": ("approver", "AIRFLOW_APPROVER_PASSWORD"),
        }.get(role, ("monitor", "AIRFLOW_MONITOR_PASSWORD"))
        return AirflowClient(self.airflow_url, user, self.secrets[key], timeout=timeout)

    def objects(self, key: str | None = None, secret: str | None = None, anon: bool = False):
        """An s3fs filesystem on the stack's object store (its published S3 port), with the
        stack's own keys unless others are given."""
        import s3fs

        return s3fs.S3FileSystem(
            anon=anon,
            key=None if anon else key or self.secrets["S3_ACCESS_KEY_ID"],
            secret=None if anon else secret or self.secrets["S3_SECRET_ACCESS_KEY"],
            endpoint_url=os.environ["E2E_S3_URL"],
            skip_instance_cache=True,
            use_listings_cache=False,
        )

    def upload_data(self, csv: Path, folder: str = "uploads") -> str:
        """Put ``csv`` in the stack's data root (its bucket's ``data/``), under ``folder``;
        returns the name a run's ``data_path`` gives it by. Below the top level, where the
        landing watcher does not look: the run a test triggers is the only one it starts."""
        name = f"{folder}/{csv.name}" if folder else csv.name
        self.objects().put(str(csv), f"{BUCKET}/data/{name}")
        return name

    def mlflow_secret(self, name: str) -> str:
        """One of the MLflow server's secrets, read where it is: in its own container."""
        done = subprocess.run(
            [*self.compose, "exec", "-T", "mlflow", "cat", f"/run/secrets/mlflow/{name}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def mlflow_login(self, username: str) -> tuple[str, str]:
        """An MLflow account secrets-init made besides its admin (reader, monitor, airflow)."""
        return username, json.loads(self.mlflow_secret("mlflow-users.json"))[username]

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
    result = _docker(*args)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def project_containers(project: str, stopped: bool = False) -> list[dict]:
    """``docker inspect`` of every running container of a Compose project (with ``stopped``,
    the exited ones too)."""
    listed = ("ps", "-aq" if stopped else "-q")
    ids = docker(*listed, "--filter", f"label=com.docker.compose.project={project}").split()
    return json.loads(docker("inspect", *ids)) if ids else []


def pause(container: str, attempts: int = 5) -> None:
    """``docker pause``, tried again when the engine fails to freeze the container's cgroup
    ("unable to freeze"), which happens now and then while its processes are forking."""
    for _ in range(attempts - 1):
        result = _docker("pause", container)
        if result.returncode == 0:
            return
        if "unable to freeze" not in result.stderr:
            break
        time.sleep(1)
    docker("pause", container)


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
