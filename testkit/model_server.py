"""The model service as it is deployed, for tests and benchmarks: fixture models trained into
registries laid out as a stack's model root, and gunicorn serving them on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from testkit import fixture_models
from testkit.cli import adclick
from testkit.ports import free_port
from testkit.waiting import wait_until

START_TIMEOUT_S = 180.0  # a loaded machine takes long to import pandas and scikit-learn


def train(name: str, data: Path, registry: Path) -> dict:
    """Train fixture model ``name`` on its CSV in ``data`` into ``registry``; its summary."""
    import json

    module, csv = fixture_models.module(name), data / f"{name}.csv"
    done = adclick("train", "--model", module, "--data", csv, "--model-dir", registry)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def model_root(folder: Path, data: Path, names: tuple[str, ...] = fixture_models.NAMES) -> Path:
    """``folder/model``: a champion of each fixture model in ``<root>/<name>``, and the
    fixture modules in ``folder/models``."""
    root = folder / "model"
    for name in names:
        train(name, data, root / name)
    fixture_models.install(folder / "models", names)
    return root


@contextmanager
def served(
    root: Path | str,
    models: Path,
    log: Path,
    *,
    via_cli: bool = False,
    env: dict[str, str] | None = None,
    **settings: str,
) -> Iterator[str]:
    """gunicorn serving ``models`` from ``root`` (a folder or an s3:// URL) on a free port
    (``python -m adclick serve`` with ``via_cli``), with ``env`` added to this process's
    environment; its URL once /health answers. ``settings`` are MODEL_SERVER_* names without
    the prefix."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MODEL_SERVER_")},
        **(env or {}),
        **{f"MODEL_SERVER_{key}": value for key, value in settings.items()},
    }
    if via_cli:
        command = [sys.executable, "-m", "adclick", "serve", "--model-dir", str(root),
                   "--models", str(models), "--port", str(port)]  # fmt: skip
    else:
        import model_server

        conf = Path(model_server.__file__).parent / "gunicorn.conf.py"
        env |= {
            "MODEL_SERVER_MODEL_ROOT": str(root),
            "MODEL_SERVER_MODELS_DIR": str(models),
            "MODEL_SERVER_BIND": f"127.0.0.1:{port}",
        }
        command = [sys.executable, "-m", "gunicorn", "-c", str(conf), "model_server:create_app()"]
    url = f"http://127.0.0.1:{port}"
    with running(command, env, log, f"{url}/health"):
        yield url


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path, probe: str) -> Iterator[None]:
    """``command`` in a session of its own, logging to ``log``, until ``probe`` answers 200;
    on exit, SIGTERM to its whole group (SIGKILL after 15 s)."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until(lambda: _answers(probe, process, log), START_TIMEOUT_S, probe)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _answers(probe: str, process: subprocess.Popen, log: Path) -> bool:
    if process.poll() is not None:
        tail = log.read_text(errors="replace")[-3000:]
        raise AssertionError(f"{process.args[0]} exited with {process.returncode}:\n{tail}")
    try:
        return requests.get(probe, timeout=2).status_code == 200
    except requests.RequestException:
        return False
