"""Storage roots in a real object store: SeaweedFS's ``weed`` (the dev lock's binary) serving S3.

The registry's guarantees without a rename (a failed write, a rejected model, promotions
racing), the data root's containment on URLs, the size and kind of an object judged by its
HEAD before a byte is read, the steps with their working directory in the bucket, and the
command line with ``s3://`` for data and model directory. The one injected fault is a PUT
that fails midway through a registration, which a healthy store cannot be made to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from upath import UPath

from adclick import retention, source, steps, storage
from adclick.errors import ArtifactError, DataValidationError, RegistryError
from adclick.registry import CURRENT_FILE, METADATA_FILE, MODEL_FILE, ModelRegistry
from adclick_airflow.trigger_conf import ConfError, resolve_dataset
from testkit.datasets import SAMPLE_CSV, adclick
from testkit.objectstore import BUCKET, ObjectStore

pytestmark = pytest.mark.integration

METRICS = {"accuracy": 0.95, "test_rows": 300}


@pytest.fixture
def prefix(s3_env: ObjectStore) -> UPath:
    """A fresh prefix of the bucket for one test."""
    return storage.location(f"s3://{BUCKET}/{uuid.uuid4().hex}")


@pytest.fixture
def promoted(prefix: UPath) -> tuple[ModelRegistry, bytes]:
    """A registry in the bucket with one promoted version; the bytes of its ``current``."""
    registry = ModelRegistry(prefix / "model")
    registry.register(b"model one", METRICS, {}, promote=True)
    return registry, registry.current_file.read_bytes()


def _objects(prefix: UPath) -> set[str]:
    return {info.name for info in storage.objects(prefix)}


def test_a_write_failing_midway_leaves_current_and_no_partial_version(
    promoted: tuple[ModelRegistry, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, current_bytes = promoted
    before = _objects(registry.model_dir)
    real_write = type(registry.model_dir).write_bytes

    def fail_on_metadata(path, data):  # the model and metrics are stored by then
        if path.name == METADATA_FILE:
            raise PermissionError(13, "Access Denied")
        return real_write(path, data)

    monkeypatch.setattr(type(registry.model_dir), "write_bytes", fail_on_metadata)
    with pytest.raises(RegistryError, match="write model version"):
        registry.register(b"model two", METRICS, {}, promote=True)
    monkeypatch.undo()
    assert registry.current_file.read_bytes() == current_bytes
    assert _objects(registry.model_dir) == before


def test_a_failed_pointer_put_removes_the_new_version(
    promoted: tuple[ModelRegistry, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, current_bytes = promoted
    before = registry.versions()
    real_write = type(registry.model_dir).write_bytes

    def fail_on_current(path, data):
        if path.name == CURRENT_FILE:
            raise PermissionError(13, "Access Denied")
        return real_write(path, data)

    monkeypatch.setattr(type(registry.model_dir), "write_bytes", fail_on_current)
    with pytest.raises(RegistryError, match=f"update {CURRENT_FILE}"):
        registry.register(b"model two", METRICS, {}, promote=True)
    monkeypatch.undo()
    assert registry.current_file.read_bytes() == current_bytes
    assert registry.versions() == before


def test_a_rejected_model_is_kept_whole_and_current_keeps_its_bytes(
    promoted: tuple[ModelRegistry, bytes],
) -> None:
    registry, current_bytes = promoted
    rejected = registry.register(b"weak model", {"accuracy": 0.5}, {}, promote=False)
    assert registry.current_file.read_bytes() == current_bytes
    assert rejected["version"] in registry.versions()
    assert registry.version_info(rejected["version"])["metrics"] == {"accuracy": 0.5}
    stored = UPath(rejected["model_path"]).read_bytes()
    assert stored == b"weak model"


def test_promotions_racing_end_with_current_naming_one_complete_version(prefix: UPath) -> None:
    racers = 4
    start = threading.Barrier(racers)
    results: list[dict] = []
    errors: list[BaseException] = []

    def register(n: int) -> None:
        registry = ModelRegistry(prefix / "model")
        start.wait()
        try:
            results.append(registry.register(f"model {n}".encode(), METRICS, {}, promote=True))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    registry = ModelRegistry(prefix / "model")
    assert sorted(registry.versions()) == sorted(r["version"] for r in results)
    current = registry.current()
    assert current["version"] in registry.versions()
    model = UPath(current["path"]).read_bytes()
    assert current["version"].endswith(hashlib.sha256(model).hexdigest()[:8])


@pytest.mark.parametrize(
    "value",
    [
        "../model/current.json",
        "sub/../../model/current.json",
        "./advertising.csv",
        "sub//advertising.csv",
        "/etc/passwd",
        f"s3://{BUCKET}/database/advertising.csv",  # a sibling prefix sharing the name's start
        "s3://another-bucket/data/advertising.csv",
        "file:///etc/passwd",
    ],
)
def test_data_paths_outside_the_data_prefix_are_refused(prefix: UPath, value: str) -> None:
    root = storage.location(f"s3://{BUCKET}/data")
    with pytest.raises(ConfError):
        resolve_dataset(value, root)


def test_objects_under_the_data_prefix_are_accepted(prefix: UPath) -> None:
    root = prefix / "data"
    assert str(resolve_dataset("advertising.csv", root)) == f"{root}/advertising.csv"
    assert str(resolve_dataset(f"{root}/sub/a.csv", root)) == f"{root}/sub/a.csv"


def test_an_object_over_the_limit_is_refused_by_its_head_size(prefix: UPath) -> None:
    big = prefix / "data" / "big.csv"
    big.write_bytes(b"x" * 12_000_000)
    with (
        pytest.raises(DataValidationError, match=r"the file is 12\.0 MB, larger than .* 1 MB"),
        source.open_dataset(big, root=prefix / "data", max_bytes=1_000_000),
    ):
        pass  # a streamed read would stop near the limit and could not know the 12 MB


@pytest.mark.parametrize(
    ("name", "problem"), [("data", "is a prefix"), ("data/missing.csv", "no such object")]
)
def test_prefixes_and_missing_objects_are_refused(prefix: UPath, name: str, problem: str) -> None:
    (prefix / "data" / "advertising.csv").write_bytes(SAMPLE_CSV.read_bytes())
    with pytest.raises(DataValidationError, match=problem):
        steps.ingest_csv(prefix / name, prefix / "work", adclick(), root=prefix)


def test_a_data_object_outside_the_root_is_refused_before_it_is_read(prefix: UPath) -> None:
    (prefix / "secret.csv").write_bytes(SAMPLE_CSV.read_bytes())
    with pytest.raises(DataValidationError, match="outside the data root"):
        steps.ingest_csv(prefix / "secret.csv", prefix / "work", adclick(), root=prefix / "data")


def test_the_steps_run_with_data_artifacts_and_registry_in_the_bucket(prefix: UPath) -> None:
    (prefix / "data" / "advertising.csv").write_bytes(SAMPLE_CSV.read_bytes())
    local = steps.read_dataset(SAMPLE_CSV, adclick())
    summary = steps.run(
        prefix / "data" / "advertising.csv",
        prefix / "model",
        prefix / "work",
        adclick(),
        run_id="s3-run",
    )
    assert summary["promoted"] and summary["data_hash"] == local.sha256
    assert {"raw.parquet", "test.parquet", "candidates/0/model.joblib", "load_model.json"} <= (
        _objects(prefix / "work")
    )
    with pytest.raises(ArtifactError, match="outside the artifacts root"):
        steps.register_model(
            prefix / "work",
            prefix / "model",
            adclick(),
            {"metric": "accuracy", "min": 0.9},
            "x",
            artifact_root=prefix / "elsewhere",
        )


def test_readers_without_keys_or_with_unknown_keys_are_refused(
    object_store: ObjectStore, prefix: UPath
) -> None:
    (prefix / "x").write_bytes(b"private")
    key = str(prefix / "x").removeprefix("s3://")
    import s3fs

    anonymous = s3fs.S3FileSystem(
        anon=True, endpoint_url=object_store.endpoint, skip_instance_cache=True
    )
    stranger = s3fs.S3FileSystem(
        key="AKIAIOSFODNN7EXAMPLE",
        secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        endpoint_url=object_store.endpoint,
        skip_instance_cache=True,
    )
    for fs in (anonymous, stranger):
        with pytest.raises(PermissionError):
            fs.cat(key)
    reader = object_store.filesystem("reader")
    assert reader.cat(key) == b"private"
    with pytest.raises(PermissionError):
        reader.pipe(key, b"overwritten")


def test_cli_trains_from_and_into_the_bucket(s3_env: ObjectStore, prefix: UPath) -> None:
    (prefix / "data" / "advertising.csv").write_bytes(SAMPLE_CSV.read_bytes())
    model_dir = prefix / "model"
    data = f"{prefix}/data/advertising.csv"
    done = subprocess.run(
        [sys.executable, "-m", "adclick", "train", "--data", data, "--model-dir", str(model_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, **s3_env.env()},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["promoted"] and summary["accuracy"] >= 0.9
    assert summary["source"] == f"{prefix}/data/advertising.csv"
    pointer = json.loads((model_dir / CURRENT_FILE).read_text())
    assert pointer["version"] == summary["version"]
    assert summary["model_path"] == f"{model_dir}/versions/{summary['version']}/{MODEL_FILE}"


def test_retention_sweeps_run_prefixes_and_old_versions_but_never_current(prefix: UPath) -> None:
    later = datetime.now(UTC) + timedelta(days=60)  # objects cannot be back-dated: move now
    artifacts = prefix / "artifacts"
    (artifacts / "dag" / "run-1" / "raw.parquet").write_bytes(b"old run")
    (artifacts / "outage.json").write_bytes(b"{}")
    assert retention.remove_run_dirs(artifacts, datetime.now(UTC), timedelta(days=14)).items == []
    swept = retention.remove_run_dirs(artifacts, later, timedelta(days=14))
    assert swept.items == ["dag/run-1"] and swept.freed_bytes == len(b"old run")
    assert _objects(artifacts) == {"outage.json"}

    registry = ModelRegistry(prefix / "model")
    live = registry.register(b"live", METRICS, {}, promote=True)["version"]
    old = registry.register(b"old", METRICS, {}, promote=False)["version"]
    newest = registry.register(b"newest", METRICS, {}, promote=False)["version"]
    (registry.versions_dir / "cut-short" / MODEL_FILE).write_bytes(b"half")
    swept = retention.remove_model_versions(registry.model_dir, later, timedelta(days=30), 1)
    assert set(swept.items) == {"versions/cut-short", f"versions/{old}"}
    assert registry.versions() == sorted([live, newest])
    assert registry.current()["version"] == live
