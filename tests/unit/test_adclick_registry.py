"""The model registry: versions appear whole or not at all, and `current` moves only on success.

The machine runs tests as root, where chmod cannot make a directory read-only and a disk
cannot be filled on demand: those faults are injected by making the OS call fail with the
errno the real condition gives (EROFS, ENOSPC).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adclick import registry as registry_module
from adclick import steps
from adclick.errors import RegistryError
from adclick.registry import ModelRegistry
from adclick.workdir import candidate_dir
from testkit.datasets import adclick, split_sample
from testkit.files import load_model_file, read_only, small_filesystem, snapshot

METRICS = {"accuracy": 0.95, "test_rows": 300}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real fitted model file, made by the pipeline's own steps."""
    workdir = split_sample(tmp_path_factory.mktemp("work"))
    steps.fit_and_score(workdir, adclick())
    return candidate_dir(workdir, 0) / steps.MODEL


@pytest.fixture
def registry(tmp_path: Path, model_file: Path) -> ModelRegistry:
    """A registry that already has one promoted version."""
    registry = ModelRegistry(tmp_path / "model")
    registry.register(model_file, METRICS, {"run_id": "first"}, promote=True)
    return registry


def fail_with(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return fail


def test_empty_registry_has_no_current_and_is_not_created(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "model")
    assert registry.current() is None and registry.versions() == []
    assert not (tmp_path / "model").exists()


def test_promoted_version_becomes_current(registry: ModelRegistry, model_file: Path) -> None:
    current = registry.current()
    assert current["version"] == registry.versions()[0]
    assert current["metrics"] == METRICS and current["metadata"]["run_id"] == "first"
    assert Path(current["path"]).read_bytes() == model_file.read_bytes()
    assert hasattr(load_model_file(current["path"]), "predict_proba")
    stored = sorted(p.name for p in Path(current["path"]).parent.iterdir())
    assert stored == ["metadata.json", "metrics.json", "model.joblib"]


def test_unpromoted_version_is_kept_but_current_is_byte_identical(
    registry: ModelRegistry, model_file: Path
) -> None:
    before = snapshot(registry.model_dir)
    result = registry.register(model_file, METRICS, {"run_id": "rejected"}, promote=False)
    after = snapshot(registry.model_dir)
    assert result["promoted"] is False and Path(result["model_path"]).is_file()
    assert {k: v for k, v in after.items() if k in before} == before
    assert len(registry.versions()) == 2
    assert registry.current()["metadata"]["run_id"] == "first"


def test_new_promotion_moves_current(registry: ModelRegistry, model_file: Path) -> None:
    result = registry.register(model_file, METRICS, {"run_id": "second"}, promote=True)
    assert registry.current()["version"] == result["version"] == registry.versions()[-1]


@pytest.mark.parametrize(
    ("call", "code", "words"),
    [
        ("fsync", errno.ENOSPC, "No space left on device"),  # disk full while writing
        ("mkdir", errno.EROFS, "Read-only file system"),  # read-only model directory
        ("rename", errno.ENOSPC, "No space left on device"),  # the version's final rename
        ("replace", errno.EROFS, "Read-only file system"),  # moving the current pointer
    ],
)
def test_write_failures_leave_the_registry_byte_identical(
    registry: ModelRegistry,
    model_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    call: str,
    code: int,
    words: str,
) -> None:
    before = snapshot(registry.model_dir)
    entries = sorted(p.name for p in registry.model_dir.rglob("*"))
    monkeypatch.setattr(os, call, fail_with(code))
    with pytest.raises(RegistryError) as caught:
        registry.register(model_file, METRICS, {"run_id": "doomed"}, promote=True)
    monkeypatch.undo()
    assert str(registry.model_dir) in str(caught.value) and words in str(caught.value)
    assert snapshot(registry.model_dir) == before
    assert sorted(p.name for p in registry.model_dir.rglob("*")) == entries, "leftovers"
    assert registry.current()["metadata"]["run_id"] == "first"


def test_read_only_directory_for_real(registry: ModelRegistry, model_file: Path) -> None:
    before = snapshot(registry.model_dir)
    with (
        read_only(registry.model_dir),
        pytest.raises(RegistryError, match=r"Read-only file system|Permission denied") as caught,
    ):
        registry.register(model_file, METRICS, {}, promote=True)
    assert str(registry.model_dir) in str(caught.value)
    assert snapshot(registry.model_dir) == before


def test_full_disk_for_real(tmp_path: Path, model_file: Path) -> None:
    """A current model on a tiny filesystem, filled up; the next model does not fit."""
    registry = ModelRegistry(tmp_path / "model")
    registry.model_dir.mkdir()
    with small_filesystem(registry.model_dir, size_kb=256):
        registry.register(model_file, METRICS, {"run_id": "first"}, promote=True)
        filler = registry.model_dir / "filler"
        with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
            while True:  # until the filesystem says it is full
                handle.write(b"\0" * 4096)
        before = snapshot(registry.model_dir)

        with pytest.raises(RegistryError, match="No space left on device") as caught:
            registry.register(model_file, METRICS, {"run_id": "second"}, promote=True)

        assert str(registry.model_dir) in str(caught.value)
        assert snapshot(registry.model_dir) == before
        assert registry.current()["metadata"]["run_id"] == "first"


def test_registry_can_be_moved_or_mounted_elsewhere(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    """current.json stores relative paths, so a copy (or a container mount) still resolves."""
    moved = shutil.copytree(registry.model_dir, tmp_path / "elsewhere")
    current = ModelRegistry(moved).current()
    assert current["path"].startswith(str(moved.resolve()))
    assert Path(current["path"]).is_file()


def test_unreadable_pointer_is_a_registry_error(registry: ModelRegistry) -> None:
    registry.current_file.write_text("{not json", encoding="utf-8")
    with pytest.raises(RegistryError, match=r"current\.json"):
        registry.current()


def test_pointer_names_version_and_model(registry: ModelRegistry) -> None:
    pointer = json.loads(registry.current_file.read_text(encoding="utf-8"))
    assert pointer["model"] == f"versions/{pointer['version']}/model.joblib"


def test_a_failed_fsync_after_the_rename_leaves_no_half_registered_version(
    registry: ModelRegistry, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until the directory is fsynced a crash may undo the rename: the version must not stay."""
    before = snapshot(registry.model_dir)
    real_fsync_dir = registry_module._fsync_dir

    def fail_on_versions_dir(path: Path) -> None:
        if Path(path) == registry.versions_dir:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync_dir(path)

    monkeypatch.setattr(registry_module, "_fsync_dir", fail_on_versions_dir)
    with pytest.raises(RegistryError, match="Input/output error"):
        registry.register(model_file, METRICS, {"run_id": "not durable"}, promote=True)
    assert snapshot(registry.model_dir) == before
    assert len(registry.versions()) == 1 and registry.current()["metadata"]["run_id"] == "first"


REGISTER_IN_ANOTHER_PROCESS = """
import sys
from pathlib import Path
from adclick.registry import ModelRegistry
from adclick.workdir import candidate_dir
print("ready", flush=True)
registered = ModelRegistry(sys.argv[1]).register(
    Path(sys.argv[2]), {"accuracy": 0.95}, {"run_id": "other process"}, promote=True
)
print(registered["version"], flush=True)
"""


def test_registration_waits_while_another_process_holds_the_registry(
    registry: ModelRegistry, model_file: Path
) -> None:
    """The command line and a DAG task promoting at once take turns, not last-writer-wins."""
    holder = os.open(registry.model_dir / ".lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    other = subprocess.Popen(
        [sys.executable, "-c", REGISTER_IN_ANOTHER_PROCESS, registry.model_dir, model_file],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout.readline().strip() == "ready"
        with pytest.raises(subprocess.TimeoutExpired):
            other.wait(timeout=2)  # ample for a registration that did not wait
        assert len(registry.versions()) == 1
    finally:
        os.close(holder)
    version = other.communicate(timeout=60)[0].strip()
    assert other.returncode == 0 and registry.current()["version"] == version


class Promotion:
    """Stands for the registry alias that moves with ``current.json`` (MLflow's champion):
    records what it saw, and fails where a test asks it to."""

    def __init__(self, fail_on_enter: bool = False) -> None:
        self.fail_on_enter = fail_on_enter
        self.entered = False
        self.undone: BaseException | None = None

    @contextlib.contextmanager
    def __call__(self):
        if self.fail_on_enter:
            raise ConnectionError("alias service refused")
        self.entered = True
        try:
            yield
        except BaseException as exc:
            self.undone = exc
            raise


def test_a_promotion_that_fails_leaves_the_registry_byte_identical(
    registry: ModelRegistry, model_file: Path
) -> None:
    before = snapshot(registry.model_dir)
    entries = sorted(p.name for p in registry.model_dir.rglob("*"))
    with pytest.raises(ConnectionError):
        registry.register(model_file, METRICS, {}, promote=True, promotion=Promotion(True))
    assert snapshot(registry.model_dir) == before
    assert sorted(p.name for p in registry.model_dir.rglob("*")) == entries, "leftovers"


def test_a_pointer_that_cannot_move_undoes_the_promotion(
    registry: ModelRegistry, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(registry.model_dir)
    promotion = Promotion()
    monkeypatch.setattr(os, "replace", fail_with(errno.ENOSPC))
    with pytest.raises(RegistryError):
        registry.register(model_file, METRICS, {}, promote=True, promotion=promotion)
    monkeypatch.undo()
    assert promotion.entered and isinstance(promotion.undone, RegistryError)
    assert snapshot(registry.model_dir) == before


def test_a_promotion_is_entered_before_the_pointer_moves(
    registry: ModelRegistry, model_file: Path
) -> None:
    seen = []

    @contextlib.contextmanager
    def promotion():
        seen.append(registry.current()["metadata"]["run_id"])  # still the old one
        yield

    result = registry.register(
        model_file, METRICS, {"run_id": "new"}, promote=True, promotion=promotion
    )
    assert seen == ["first"] and registry.current()["version"] == result["version"]
