"""A real SeaweedFS S3 server (the dev lock's ``weed`` binary) on free ports, with identities.

Started the way the Compose stack starts its object store: one ``weed server`` with S3 on,
every listener on 127.0.0.1, an identities file so that anonymous and unknown keys are
refused. ``ObjectStore.env()`` is what a process needs to reach it as one identity, through
the standard AWS variables.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from testkit.ports import free_port

WEED = Path(sys.executable).with_name("weed")
START_TIMEOUT_S = 60
BUCKET = "adclick"
MODEL_PREFIX = "model"


@dataclass(frozen=True)
class Identity:
    name: str
    access_key: str
    secret_key: str
    actions: tuple[str, ...]

    def as_config(self) -> dict:
        return {
            "name": self.name,
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": list(self.actions),
        }


def identity(name: str, *actions: str) -> Identity:
    """An identity with fresh random keys."""
    return Identity(name, f"AK{secrets.token_hex(8).upper()}", secrets.token_urlsafe(30), actions)


@dataclass
class ObjectStore:
    endpoint: str
    identities: dict[str, Identity]
    log: Path
    pid: int = 0
    buckets: list[str] = field(default_factory=list)

    def env(self, name: str = "writer") -> dict[str, str]:
        """The standard AWS variables that reach this store as identity ``name``."""
        who = self.identities[name]
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": who.access_key,
            "AWS_SECRET_ACCESS_KEY": who.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def filesystem(self, name: str = "admin"):
        """An s3fs filesystem of its own (no shared instance cache) as identity ``name``."""
        import s3fs

        who = self.identities[name]
        return s3fs.S3FileSystem(
            key=who.access_key,
            secret=who.secret_key,
            endpoint_url=self.endpoint,
            skip_instance_cache=True,
            use_listings_cache=False,
        )


def weed_args(directory: Path, config: Path, ports: dict[str, int]) -> list[str]:
    """``weed server`` with S3, every listener on 127.0.0.1, nothing it does not need."""
    return [
        "server",
        f"-dir={directory}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        "-volume.max=8",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
    ]


@contextmanager
def running_weed(directory: Path, buckets: tuple[str, ...] = (BUCKET,)) -> Iterator[ObjectStore]:
    """Start ``weed``, create ``buckets`` as the admin, yield the store; stop it afterwards.
    Identities: ``admin``, ``writer`` (read, write, list on the buckets), ``reader``, and
    ``models`` (read objects under ``model/``)."""
    names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3")
    ports = {name: free_port() for name in (*names, "s3_grpc")}

    def on_buckets(*actions: str) -> list[str]:
        return [f"{action}:{bucket}" for bucket in buckets for action in actions]

    # admin only makes the buckets; "writer" has what the Compose stack's identity has.
    people = {
        "admin": identity("admin", "Admin"),
        "writer": identity("writer", *on_buckets("Read", "Write", "List", "Tagging")),
        "reader": identity("reader", *on_buckets("Read", "List")),
        # What the Compose stack's model service has: reading objects under model/ alone.
        "models": identity("models", *(f"Read:{bucket}/{MODEL_PREFIX}/*" for bucket in buckets)),
    }
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "s3.json"
    config.write_text(json.dumps({"identities": [p.as_config() for p in people.values()]}))
    config.chmod(0o600)
    data = directory / "data"
    data.mkdir(exist_ok=True)
    log = directory / "weed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(WEED), *weed_args(data, config, ports)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    store = ObjectStore(f"http://127.0.0.1:{ports['s3']}", people, log, process.pid)
    try:
        _create_buckets(store, buckets, process)
        store.buckets = list(buckets)
        yield store
    finally:
        with _suppress_gone():
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=3)  # its data is thrown away: no need to wait for a flush
        except subprocess.TimeoutExpired:
            with _suppress_gone():
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(data, ignore_errors=True)


def _create_buckets(store: ObjectStore, buckets: tuple[str, ...], process) -> None:
    """Create the buckets, retrying until the S3 gateway, its filer and a volume answer."""
    deadline = time.monotonic() + START_TIMEOUT_S
    fs = store.filesystem()
    pending = list(buckets)
    while pending:
        if process.poll() is not None:
            tail = store.log.read_text()[-2000:]
            raise RuntimeError(f"weed exited ({process.returncode}): {tail}")
        try:
            fs.makedirs(pending[0], exist_ok=True)
            fs.pipe(f"{pending[0]}/.probe", b"ok")  # a volume is up: objects can be written
            fs.rm(f"{pending[0]}/.probe")
            pending.pop(0)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _suppress_gone() -> contextlib.suppress:
    return contextlib.suppress(ProcessLookupError)
