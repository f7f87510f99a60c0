"""Nobody let in: secrets of the stack's own, in no image layer; containers without root;
front-end containers cut off from the database and the broker; Redis and Flower behind a
password; guessable secrets refused."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from contextlib import ExitStack

import jwt
import pytest
import requests

from embedded.stack import REPO_ROOT
from testkit.compose import ComposeStack, docker
from testkit.docs import documentation_pages
from testkit.envfile import SECRET_KEYS, compose_stack_secrets
from testkit.flask_service import one_byte_clients
from testkit.scaleout import WORKER_SECRETS
from testkit.worker_secrets import forbidden_in

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

# The socket proxy alone runs as root (the engine's socket is root's), with no capabilities.
# (secrets-init and airflow-init run as root too, and are done before the rest starts.)
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
        ("AIRFLOW_FERNET_KEY=not-a-key", ["AIRFLOW_FERNET_KEY is not a Fernet key"]),
        ("AIRFLOW_API_SECRET_KEY=api-secret", ["AIRFLOW_API_SECRET_KEY is shorter than 32"]),
        ("AIRFLOW_ADMIN_PASSWORD=admin", ["AIRFLOW_ADMIN_PASSWORD is shorter than 12"]),
    ],
)
def test_secrets_init_refuses_a_guessable_or_malformed_secret(
    stack: ComposeStack, override: str, words: list[str]
) -> None:
    """A value set in the env file is checked before anything is written: the job stops
    with a message naming it, and the secrets in use stay as they were."""
    result = subprocess.run(
        [*stack.compose, "run", "--rm", "--no-deps", "-e", override, "secrets-init"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for word in words:
        assert word in output, output
    assert compose_stack_secrets(stack.compose) == stack.secrets


def test_the_stack_runs_on_secrets_of_its_own(stack: ComposeStack) -> None:
    """Started with the committed files only, every secret was generated: long, distinct,
    and written in no file of the repository."""
    committed = b"".join(
        path.read_bytes()
        for path in (REPO_ROOT / ".env", REPO_ROOT / "docker-compose.yaml", *documentation_pages())
    )
    values = [stack.secrets[key] for key in (*SECRET_KEYS, "REDIS_PASSWORD", "FLOWER_PASSWORD")]
    assert len(set(values)) == len(values)
    for value in values:
        assert len(value) >= 24 and value.encode() not in committed


def in_network_of(stack: ComposeStack, service: str, code: str) -> subprocess.CompletedProcess:
    """Run Python ``code`` in a scratch container sharing ``service``'s network namespace:
    what that service could reach, whatever its image contains."""
    return subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            f"container:{stack.container_id(service)}",
            stack.scratch_image,
            "python",
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


CONNECT = """
import socket, sys
try:
    socket.create_connection(({host!r}, {port}), 3).close()
except OSError as exc:
    print("unreachable:", exc)
    sys.exit(1)
"""


def ip_addresses(container: str) -> list[str]:
    out = docker(
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        container,
    )
    return out.split()


@pytest.mark.parametrize("front", ["flask-monitor", "mailpit"])
@pytest.mark.parametrize(("backend", "port"), [("redis", 6379), ("postgres", 5432)])
def test_front_end_services_cannot_reach_the_database_or_the_broker(
    stack: ComposeStack, front: str, backend: str, port: int
) -> None:
    targets = [backend, *ip_addresses(stack.container_id(backend))]
    for target in targets:
        result = in_network_of(stack, front, CONNECT.format(host=target, port=port))
        assert result.returncode == 1, f"{front} reaches {target}:{port}: {result.stderr}"
        assert "unreachable" in result.stdout, result.stdout + result.stderr


def test_the_flask_monitor_still_reaches_the_api_server(stack: ComposeStack) -> None:
    """The probe above is real: the one connection the monitor needs goes through."""
    result = in_network_of(
        stack, "flask-monitor", CONNECT.format(host="airflow-apiserver", port=8080)
    )
    assert result.returncode == 0, result.stdout + result.stderr


REDIS_PING = r"""
import socket
with socket.create_connection(("redis", 6379), 3) as sock:
    sock.sendall(b"PING\r\n")
    print(sock.recv(200).decode())
"""


def test_redis_requires_its_password(stack: ComposeStack) -> None:
    result = in_network_of(stack, "airflow-worker", REDIS_PING)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("-NOAUTH"), result.stdout


def test_flower_asks_for_a_login(stack: ComposeStack) -> None:
    """Flower shows task arguments, execution tokens among them."""
    up = [
        *stack.compose,
        "--profile",
        "flower",
        "up",
        "--detach",
        "--wait",
        "--no-build",
        "--no-deps",
    ]
    started = subprocess.run([*up, "flower"], capture_output=True, text=True, timeout=400)
    try:
        assert started.returncode == 0, started.stderr
        url = os.environ.get("E2E_FLOWER_URL", "http://127.0.0.1:5555")
        assert requests.get(f"{url}/", timeout=10).status_code == 401
        assert requests.get(f"{url}/", auth=("flower", "wrong"), timeout=10).status_code == 401
        password = stack.secrets["FLOWER_PASSWORD"]
        answer = requests.get(f"{url}/", auth=("flower", password), timeout=10)
        assert answer.status_code == 200
    finally:
        subprocess.run(
            [*stack.compose, "--profile", "flower", "rm", "--stop", "--force", "flower"],
            capture_output=True,
            timeout=120,
        )


def test_the_flask_monitor_answers_only_its_own_host_names(stack: ComposeStack) -> None:
    """DNS rebinding: a page on another site that points its name at the published port gets
    400; the names the stack itself uses (the published port, the service name) are served."""
    url = f"{stack.flask_url}/api/status"
    for host in ("attacker.example", "attacker.example:5000"):
        assert requests.get(url, headers={"Host": host}, timeout=10).status_code == 400
    assert requests.get(f"{stack.flask_url}/health", timeout=10).status_code == 200
    ping = "import urllib.request as u; u.urlopen('http://flask-monitor:5000/health', timeout=5)"
    result = in_network_of(stack, "airflow-worker", ping)
    assert result.returncode == 0, result.stdout + result.stderr


def test_slow_clients_leave_the_flask_monitor_answering(stack: ComposeStack) -> None:
    """100 connections that send one byte and then nothing, through the published port: the
    image's gunicorn still answers /health and /api/status within a second."""
    with ExitStack() as held:
        one_byte_clients(stack.flask_url, 100, held)
        health = requests.get(f"{stack.flask_url}/health", timeout=1.0)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert requests.get(f"{stack.flask_url}/api/status", timeout=1.0).status_code < 500


# Run inside the worker: sign the claims of a real admin token with every secret and key the
# worker can read, and try each token on an admin-only endpoint of the api-server.
FORGE = r"""
import json, os, sys, urllib.error, urllib.request
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

claims = json.loads(sys.argv[1])
candidates = {f"env {k}": v for k, v in os.environ.items() if len(v) >= 16}
for top in ("/opt/airflow", "/run/secrets", "/home/airflow"):
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ("logs", "dags", ".local", ".cache")]
        for name in files:
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as handle:
                    data = handle.read(65536)
            except OSError:
                continue
            text = data.decode(errors="ignore").strip()
            if 16 <= len(text) <= 8192:
                candidates[path] = text
tokens = []
for name, value in candidates.items():
    tokens.append((name, jwt.encode(claims, value, algorithm="HS512")))
    if "PRIVATE KEY" in value:
        try:
            key = load_pem_private_key(value.encode(), password=None)
        except ValueError:
            continue
        for algorithm in ("EdDSA", "RS256", "RS512", "ES256"):
            try:
                tokens.append((f"{name} {algorithm}", jwt.encode(claims, key, algorithm=algorithm)))
            except Exception:
                pass
accepted = []
for name, token in tokens:
    request = urllib.request.Request(
        "http://airflow-apiserver:8080/api/v2/connections",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            accepted.append((name, response.status))
    except urllib.error.HTTPError:
        pass
print(json.dumps({"tried": len(tokens), "accepted": accepted}))
"""


def test_code_in_a_task_cannot_sign_an_admin_token(stack: ComposeStack) -> None:
    """Whatever the worker (and so any task) can read, a token it signs is refused: only the
    api-server and the scheduler hold the private key tokens are signed with."""
    login = requests.post(
        f"{stack.airflow_url}/auth/token",
        json={"username": "admin", "password": stack.secrets["AIRFLOW_ADMIN_PASSWORD"]},
        timeout=30,
    )
    genuine = login.json()["access_token"]
    headers = {"Authorization": f"Bearer {genuine}"}
    assert requests.get(f"{stack.airflow_url}/api/v2/connections", headers=headers, timeout=30).ok
    claims = jwt.decode(genuine, options={"verify_signature": False})
    done = subprocess.run(
        [*stack.compose, "exec", "-T", "airflow-worker", "python", "-c", FORGE, json.dumps(claims)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["tried"] >= 10, result  # the secrets it holds, its environment
    assert result["accepted"] == [], result


def test_the_worker_holds_no_database_password_and_nothing_that_signs(
    stack: ComposeStack,
) -> None:
    """Code in a task sees what the worker holds: no database URL or password, no API secret
    key, no private key, in any process's environment or any file it can read. Its tasks
    still run (the training tests), with task states in Redis."""
    assert forbidden_in(stack.container_id("airflow-worker"), stack.secrets) == []
    done = subprocess.run(
        [*stack.compose, "exec", "-T", "airflow-worker", "sh", "-c", "ls /opt/airflow/secrets"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # A remote worker's (testkit.scaleout), and the monitor's password for the main host's
    # monitor DAG.
    assert set(done.stdout.split()) == {*WORKER_SECRETS, "AIRFLOW_MONITOR_PASSWORD"}


# Run inside a service: what its database role may do (argv: role, its database, another
# database, then the command that prints its password).
ROLE_PROBE = r"""
import json, subprocess, sys
import psycopg2

role, own, other, *password_command = sys.argv[1:]
password = subprocess.run(password_command, check=True, capture_output=True, text=True).stdout
conn = psycopg2.connect(host="postgres", user=role, password=password, dbname=own)
conn.autocommit = True
cur = conn.cursor()
cur.execute(
    "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
)
rights = cur.fetchone()
try:
    cur.execute("COPY (SELECT 1) TO PROGRAM 'true'")
    program = "ran"
except psycopg2.Error as exc:
    program = exc.pgcode
try:
    psycopg2.connect(host="postgres", user=role, password=password, dbname=other).close()
    other_db = "connected"
except psycopg2.OperationalError:
    other_db = "refused"
print(json.dumps({"rights": rights, "program": program, "other_db": other_db}))
"""


@pytest.mark.parametrize(
    ("service", "role", "own", "other", "password_command"),
    [
        ("airflow-scheduler", "airflow", "airflow", "mlflow",
         ["sh", "/opt/adclick/bin/secret", "POSTGRES_PASSWORD"]),
        ("mlflow", "mlflow", "mlflow", "airflow",
         ["cat", "/run/secrets/mlflow/MLFLOW_DB_PASSWORD"]),
    ],
)  # fmt: skip
def test_the_running_services_database_roles_own_their_database_and_nothing_more(
    stack: ComposeStack,
    service: str,
    role: str,
    own: str,
    other: str,
    password_command: list[str],
) -> None:
    """No superuser (so no COPY ... TO PROGRAM, which runs a shell on the database server), no
    role or database creation, no way into the other service's database."""
    done = subprocess.run(
        [*stack.compose, "exec", "-T", service, "python", "-c", ROLE_PROBE, role, own, other,
         *password_command],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    probe = json.loads(done.stdout.splitlines()[-1])
    assert probe == {"rights": [False, False, False], "program": "42501", "other_db": "refused"}
