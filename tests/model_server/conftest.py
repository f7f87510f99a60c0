"""The model service's fixtures: a champion of each fixture model, trained once, and a
gunicorn serving them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import fixture_models
from testkit.model_server import model_root, served


@pytest.fixture(scope="package")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixture_models.export_all(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="package")
def deployed(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``model/`` (each fixture model's registry) and ``models/`` (modules)."""
    folder = tmp_path_factory.mktemp("deployed")
    model_root(folder, data)
    return folder


@pytest.fixture(scope="package")
def server(deployed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One gunicorn on the fixture models, with a 1 MB body limit."""
    log = tmp_path_factory.mktemp("logs") / "model-server.log"
    with served(
        deployed / "model", deployed / "models", log, MAX_BODY_BYTES=str(1024 * 1024)
    ) as url:
        yield url
