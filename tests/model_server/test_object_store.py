"""The model service on registries in an object store (as in the Compose stack), reaching it
with an identity that may only read objects under ``model/``: it serves, and follows a
promotion; the identity can neither write there nor read anything else."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import requests

from adclick.registry import CURRENT_FILE
from testkit.model_server import served
from testkit.objectstore import BUCKET, MODEL_PREFIX, running_weed
from testkit.waiting import wait_until


def upload(fs, folder: Path, prefix: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            fs.pipe(f"{prefix}/{path.relative_to(folder)}", path.read_bytes())


def test_it_serves_and_follows_promotions_with_a_read_only_identity(
    deployed: Path, data: Path, tmp_path: Path
) -> None:
    local = deployed / "model" / "iris"
    record = pd.read_csv(data / "iris.csv").drop(columns=["species"]).iloc[:1]
    with running_weed(tmp_path / "weed") as store:
        writer = store.filesystem("writer")
        prefix = f"{BUCKET}/{MODEL_PREFIX}/iris"
        upload(writer, local, prefix)
        current = json.loads((local / CURRENT_FILE).read_text())
        root = f"s3://{BUCKET}/{MODEL_PREFIX}"
        log = tmp_path / "server.log"
        with served(root, deployed / "models", log, env=store.env("models")) as url:
            health = requests.get(f"{url}/health", timeout=10).json()
            answer = requests.post(f"{url}/models/iris/predict",
                                   json=record.to_dict(orient="records"), timeout=10)  # fmt: skip

            # A promotion as the registry makes it on a store: the version's objects, then
            # current.json in one PUT (here: the same model under a new version name).
            new = "20990101T000000.000000Z-" + current["sha256"][:8]
            for name in ("model.joblib", "metrics.json", "metadata.json"):
                source = writer.cat(f"{prefix}/versions/{current['version']}/{name}")
                writer.pipe(f"{prefix}/versions/{new}/{name}", source)
            pointer = {**current, "version": new, "model": f"versions/{new}/model.joblib"}
            writer.pipe(f"{prefix}/{CURRENT_FILE}", json.dumps(pointer).encode())
            wait_until(
                lambda: requests.get(f"{url}/health", timeout=10).json()["models"]["iris"] == new,
                10,
                "the new version served",
            )

        models = store.filesystem("models")
        with pytest.raises(PermissionError):
            models.pipe(f"{prefix}/{CURRENT_FILE}", b"{}")
        with pytest.raises(PermissionError):
            models.ls(f"{BUCKET}/{MODEL_PREFIX}")

    assert health["models"]["iris"] == current["version"]
    assert health["models"]["diabetes"] is None  # its registry is not in this store
    assert answer.status_code == 200 and answer.json()["model_version"] == current["version"]
