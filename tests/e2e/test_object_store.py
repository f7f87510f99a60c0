"""The Compose stack's object store, from the outside through its S3 port on 127.0.0.1: a
training run writes its model into the bucket and moves ``current``; the task's log is in the
bucket and the REST API serves it from there once the local copy is gone; only the stack's
own keys get in, and its internal ports are closed to the other containers.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from adclick.registry import CURRENT_FILE, MODEL_FILE
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from testkit.compose import BUCKET, ComposeStack, docker
from testkit.tasks import task_states

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]


def pointer(fs) -> dict | None:
    try:
        return json.loads(fs.cat(f"{BUCKET}/model/{CURRENT_FILE}"))
    except FileNotFoundError:
        return None


def test_a_training_run_registers_in_the_bucket_and_its_log_is_served_from_it(
    stack: ComposeStack,
) -> None:
    fs = stack.objects()
    assert fs.exists(f"{BUCKET}/data/advertising.csv"), "the init step seeds the data"
    before = pointer(fs)
    admin = stack.api("admin", timeout=60)  # a stack just started answers slowly at first
    run_id = admin.trigger(TRAINING)["dag_run_id"]
    run = admin.wait_for_run(TRAINING, run_id, timeout=600)
    assert run["state"] == "success", task_states(admin, TRAINING, run_id)

    result = admin.xcom(TRAINING, run_id, "load_model")
    version = result["version"]
    model_key = f"{BUCKET}/model/versions/{version}/{MODEL_FILE}"
    assert result["model_path"] == f"s3://{model_key}"
    assert fs.size(model_key) > 0
    assert pointer(fs)["version"] == version != (before or {}).get("version")
    assert fs.find(f"{BUCKET}/artifacts/{TRAINING}/"), "the run's working directory is there"

    logs = [key for key in fs.find(f"{BUCKET}/logs/dag_id={TRAINING}/") if run_id in key]
    assert any("task_id=load_model" in key for key in logs), logs
    # The local copy goes, as it would with the worker that wrote it: the API reads the bucket.
    docker(
        "exec",
        stack.container_id("airflow-worker"),
        "sh",
        "-c",
        f"rm -rf '/opt/airflow/logs/dag_id={TRAINING}/run_id={run_id}'",
    )
    path = (
        f"/api/v2/dags/{TRAINING}/dagRuns/{quote(run_id, safe='')}/taskInstances/load_model/logs/1"
    )
    served = json.dumps(admin.request("GET", path))
    assert f"s3://{BUCKET}/logs/" in served, served[:2000]
    assert version in served, served[:2000]


def test_only_the_stacks_own_keys_get_in(stack: ComposeStack) -> None:
    strangers = [
        stack.objects(anon=True),
        stack.objects("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        stack.objects(secret="not-the-secret-key-of-the-stack"),
    ]
    for fs in strangers:
        with pytest.raises(PermissionError):
            fs.cat(f"{BUCKET}/data/advertising.csv")
        with pytest.raises(PermissionError):
            fs.pipe(f"{BUCKET}/data/planted.csv", b"x")
    with pytest.raises(PermissionError):  # the stack's identity cannot make buckets either
        stack.objects().mkdir("another-bucket")


REACH = """
import socket, ssl, sys
host = "objectstore"
for port in (9333, 8888, 8080):  # master, filer, volume: HTTP APIs without credentials
    try:
        socket.create_connection((host, port), timeout=3).close()
        sys.exit(f"port {port} answers")
    except OSError:
        pass
ctx = ssl.create_default_context()
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
with ctx.wrap_socket(socket.create_connection((host, 18333), timeout=5)) as tls:
    try:
        tls.sendall(b"PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n")
        tls.recv(64)
        sys.exit("the S3 gRPC port talks to a client without a certificate")
    except ssl.SSLError as exc:
        print(exc)
"""


def test_the_object_stores_internal_ports_refuse_other_containers(stack: ComposeStack) -> None:
    out = docker("exec", stack.container_id("airflow-worker"), "python", "-c", REACH)
    assert "certificate required" in out.lower(), out
