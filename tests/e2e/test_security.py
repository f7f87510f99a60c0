"""Nobody let in: no secret in any image layer, containers without root, the init job refusing
missing, placeholder or malformed secrets."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import tarfile

import pytest

from testkit.compose import ComposeStack, docker
from testkit.envfile import SECRET_KEYS

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

# The socket proxy alone runs as root (the engine's socket is root's), with no capabilities.
ROOT_ALLOWED = {"docker-socket-proxy"}


def layer_files(image: str):
    """(layer, path, bytes) of every regular file in every layer of ``image``."""
    saved = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=saved.stdout, mode="r|") as outer:
        for member in outer:
            if not member.isfile():
                continue
            data = outer.extractfile(member).read()
            if not data.startswith(b"\x1f\x8b") and len(data) > 512 and data[257:262] == b"ustar":
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as layer:
                    for entry in layer:
                        if entry.isfile():
                            yield member.name, entry.name, layer.extractfile(entry).read()
            else:
                yield "(image metadata)", member.name, data
    assert saved.wait() == 0


def test_no_secret_in_any_layer_of_the_projects_images(stack: ComposeStack) -> None:
    assert stack.images, "E2E_IMAGES names the images the stage built"
    secrets = {key: stack.secrets[key].encode() for key in SECRET_KEYS}
    for image in stack.images:
        seen = 0
        for layer, path, data in layer_files(image):
            seen += 1
            name = path.rsplit("/", 1)[-1]
            assert not name.startswith(".env"), f"{image}: {path} in {layer}"
            for key, value in secrets.items():
                assert value not in data, f"{image}: the value of {key} is in {path} ({layer})"
        assert seen > 100, f"{image}: only {seen} files read; is `docker save` working?"


def project_containers(stack: ComposeStack) -> dict[str, str]:
    out = docker(
        "ps",
        "--filter",
        f"label=com.docker.compose.project={stack.project}",
        "--format",
        '{{.ID}} {{.Label "com.docker.compose.service"}}',
    )
    return {service: cid for cid, service in (line.split() for line in out.splitlines())}


def test_every_service_runs_without_root(stack: ComposeStack) -> None:
    containers = project_containers(stack)
    assert {"postgres", "redis", "airflow-worker", "flask-monitor", "mailpit"} <= set(containers)
    for service, container in containers.items():
        rows = docker("top", container, "-eo", "pid,uid").splitlines()[1:]
        uids = [row.split()[1] for row in rows]
        assert uids, f"{service}: no processes?"
        if service in ROOT_ALLOWED:
            config = docker(
                "inspect",
                "--format",
                "{{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}}",
                container,
            )
            assert "ALL" in config and "no-new-privileges" in config, config
        else:
            assert "0" not in uids, f"{service} runs processes as root: {uids}"


@pytest.mark.parametrize(
    ("override", "words"),
    [
        (
            "AIRFLOW__API_AUTH__JWT_SECRET=",
            ["required secret(s) not set: AIRFLOW__API_AUTH__JWT_SECRET"],
        ),
        ("ADCLICK_ENV=production", ["local-development placeholders", "AIRFLOW__CORE__FERNET_KEY"]),
        ("AIRFLOW__CORE__FERNET_KEY=not-a-key", ["is not a Fernet key"]),
    ],
)
def test_init_refuses_to_start_the_stack(stack: ComposeStack, override: str, words: list[str]):
    """A missing secret, a committed placeholder outside local development, a malformed key:
    airflow-init stops with a message naming it, and nothing else starts."""
    result = run_init(stack, override)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for word in words:
        assert word in output, output


def test_init_accepts_new_and_old_fernet_keys_while_rotating(stack: ComposeStack) -> None:
    """README, Operations: rotating the Fernet key starts with AIRFLOW_FERNET_KEY=new,old."""
    new = base64.urlsafe_b64encode(os.urandom(32)).decode()
    old = stack.secrets["AIRFLOW_FERNET_KEY"]
    result = run_init(stack, f"AIRFLOW__CORE__FERNET_KEY={new},{old}")
    assert result.returncode == 0, result.stdout + result.stderr


def run_init(stack: ComposeStack, override: str) -> subprocess.CompletedProcess:
    """The one-shot airflow-init job with one environment variable overridden."""
    return subprocess.run(
        [*stack.compose, "run", "--rm", "--no-deps", "-e", override, "airflow-init"],
        capture_output=True,
        text=True,
        timeout=300,
    )
