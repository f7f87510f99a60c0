"""Workers of the Compose stack under test, for the scale-out tests and benchmark: scaling the
main host's workers, a worker-only host (docker-compose.worker.yaml) joined over the network,
and where each task instance ran."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from airflow_rest import AirflowClient
from embedded.stack import REPO_ROOT
from testkit.compose import ComposeStack, docker

WORKER_FILE = REPO_ROOT / "docker-compose.worker.yaml"
WORKER_E2E_FILE = REPO_ROOT / "tests" / "e2e" / "compose.worker.e2e.yaml"
# What a worker needs of the main host's secrets (docker/airflow/secret names them).
WORKER_SECRETS = (
    "AIRFLOW_FERNET_KEY",
    "REDIS_PASSWORD",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "MLFLOW_TRACKING_PASSWORD",
)
STORAGE_ROOTS = ("ADCLICK_DATA_DIR", "ADCLICK_MODEL_DIR", "ADCLICK_ARTIFACT_DIR")


def grid(size: int) -> list[dict]:
    """``size`` distinct candidates (regularisation strengths around the default)."""
    return [{"C": round(10 ** (index / 2 - 1.5), 6)} for index in range(size)]


def scale_workers(stack: ComposeStack, count: int, concurrency: int | None = None) -> list[str]:
    """Run ``count`` workers of the main stack (each with ``concurrency`` processes, default
    as configured); returns their container ids once all are healthy."""
    env = dict(os.environ)
    if concurrency is not None:
        env["AIRFLOW_WORKER_CONCURRENCY"] = str(concurrency)
    subprocess.run(
        [
            *stack.compose,
            "up",
            "--detach",
            "--wait",
            "--wait-timeout",
            "300",
            "--no-deps",
            "--no-build",
            "--pull",
            "never",
            "--scale",
            f"airflow-worker={count}",
            "airflow-worker",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=360,
    )
    return worker_containers(stack.project)


def worker_containers(project: str) -> list[str]:
    out = docker(
        "ps",
        "--quiet",
        "--filter",
        f"label=com.docker.compose.project={project}",
        "--filter",
        "label=com.docker.compose.service=airflow-worker",
    )
    return out.split()


def hostname(container: str) -> str:
    return docker("inspect", "--format", "{{.Config.Hostname}}", container)


def host_of(task_instance: dict) -> str:
    """The host a task instance ran on, as :func:`hostname` names it (Airflow records the
    fully qualified name); empty when it has not run."""
    return (task_instance.get("hostname") or "").split(".")[0]


def main_worker_setting(container: str, name: str) -> str:
    return docker("exec", container, "sh", "-c", f'printf %s "${{{name}:-}}"')


def has_object_store(stack: ComposeStack) -> bool:
    """Whether the stack keeps its run files in an object store (then a worker elsewhere can
    share them); without one, only the main host's workers can run training tasks."""
    (worker, *_) = worker_containers(stack.project)
    return main_worker_setting(worker, "ADCLICK_ARTIFACT_DIR").startswith("s3://")


def instances(client: AirflowClient, dag_id: str, run_id: str, task_id: str) -> list[dict]:
    return [t for t in client.task_instances(dag_id, run_id) if t["task_id"] == task_id]


def hostnames_of_tries(client: AirflowClient, dag_id: str, run_id: str, task_id: str) -> set:
    """Every host any try of any instance of the task ran on."""
    hosts = set()
    for ti in instances(client, dag_id, run_id, task_id):
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/"
            f"{ti['map_index']}/tries"
        )
        for attempt in client.request("GET", path)["task_instances"]:
            hosts.add(host_of(attempt))
    return hosts - {""}


@contextlib.contextmanager
def remote_worker(stack: ComposeStack, concurrency: int = 1) -> Iterator[str]:
    """A worker started from docker-compose.worker.yaml on the stack's engine, joined to the
    stack's backend network only, given the main host's secrets as files; its container id."""
    (main, *_) = worker_containers(stack.project)
    project = f"{stack.project}-remote"
    with tempfile.TemporaryDirectory(prefix="adclick-remote-worker-") as secrets:
        for name in WORKER_SECRETS:
            _secret_file(
                Path(secrets, name), docker("exec", main, "sh", "/opt/adclick/bin/secret", name)
            )
        env = {
            **os.environ,
            "ADCLICK_WORKER_SECRETS_DIR": secrets,
            "AIRFLOW_IMAGE": stack.images[0],
            "E2E_MAIN_NETWORK": f"{stack.project}_backend",
            "E2E_OBJECTSTORE_NETWORK": f"{stack.project}_objectstore",
            "E2E_MAIL_NETWORK": f"{stack.project}_mail",
            "E2E_TRACKING_NETWORK": f"{stack.project}_tracking",
            "WORKER_CONCURRENCY": str(concurrency),
            "ADCLICK_MAIN_REDIS": "redis:6379",
            "ADCLICK_MAIN_EXECUTION_API": "http://airflow-apiserver:8080/execution/",
            "ADCLICK_MAIN_SMTP_HOST": "mailpit",
            "ADCLICK_MAIN_MLFLOW": main_worker_setting(main, "MLFLOW_TRACKING_URI"),
            "ADCLICK_MLFLOW_UI_URL": main_worker_setting(main, "ADCLICK_MLFLOW_UI_URL"),
            "AWS_ENDPOINT_URL": main_worker_setting(main, "AWS_ENDPOINT_URL"),
            "ADCLICK_REMOTE_LOG_FOLDER": main_worker_setting(
                main, "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"
            ),
        }
        for root in STORAGE_ROOTS:
            env[root] = main_worker_setting(main, root)
        compose = [
            "docker",
            "compose",
            "-p",
            project,
            "-f",
            str(WORKER_FILE),
            "-f",
            str(WORKER_E2E_FILE),
        ]
        up = [
            *compose,
            "up",
            "--detach",
            "--wait",
            "--wait-timeout",
            "300",
            "--no-build",
            "--pull",
            "never",
        ]
        done = subprocess.run(up, capture_output=True, text=True, env=env, timeout=360)
        try:
            assert done.returncode == 0, f"remote worker did not come up: {done.stderr}"
            (container,) = docker(
                "ps", "--quiet", "--filter", f"label=com.docker.compose.project={project}"
            ).split()
            yield container
        finally:
            subprocess.run(
                [*compose, "down", "--volumes", "--timeout", "5"],
                capture_output=True,
                env=env,
                timeout=120,
            )


def _secret_file(path: Path, value: str) -> None:
    """Readable by the worker's user inside the container; the directory keeps others out."""
    path.write_text(value)
    path.chmod(0o444)
