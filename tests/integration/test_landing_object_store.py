"""New CSV objects under the Compose data root's kind of prefix, in a real SeaweedFS S3 store:
an object another client uploads is new data at the next look (an upload lands whole, and no
listing cache hides it), the same bytes again are not, the ledger is an object beside the
models, and the newest batch is found by its upload time."""

from __future__ import annotations

import io
import time
import uuid

import pandas as pd
import pytest
from upath import UPath

from adclick import contract, landing, storage
from testkit import fixture_models
from testkit.objectstore import BUCKET, ObjectStore

pytestmark = pytest.mark.integration

IRIS = contract.load_module(fixture_models.module("iris"))


@pytest.fixture
def root(s3_env: ObjectStore) -> UPath:
    """A fresh prefix standing for the bucket: ``data/`` and ``model/iris/`` under it."""
    return storage.location(f"s3://{BUCKET}/{uuid.uuid4().hex}")


@pytest.fixture
def uploader(s3_env: ObjectStore):
    """Another client, as a team's upload is: its writes invalidate no cache of the watcher's."""
    return s3_env.filesystem("writer")


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return pd.read_csv(fixture_models.export_csv("iris", tmp_path_factory.mktemp("iris")))


def upload(
    fs, target: UPath, frame: pd.DataFrame, rows: int, *, target_column: bool = True
) -> bytes:
    frame = frame.head(rows)
    if not target_column:
        frame = frame.drop(columns=[IRIS.target])
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    data = buffer.getvalue().encode()
    fs.pipe(str(target.path), data)
    return data


def watch(root: UPath, kind: str) -> landing.LandingWatch:
    folder = root / "data" if kind == landing.TRAINING else root / "data" / "incoming"
    columns = landing.required_columns(IRIS.features, IRIS.target, kind, preprocessed=False)
    ledger = landing.Ledger(root / "model" / "iris", kind)
    return landing.LandingWatch(folder, columns, kind, ledger)


def test_an_uploaded_object_is_new_data_once(root: UPath, iris: pd.DataFrame, uploader) -> None:
    upload(uploader, root / "data" / "iris.csv", iris, 150)
    seen = watch(root, landing.TRAINING)
    assert seen.poll() == [] and seen.ledger.path.exists(), "the first look is the baseline"

    data = upload(uploader, root / "data" / "uploaded.csv", iris, 120)
    upload(uploader, root / "data" / "incoming" / "batch.csv", iris, 30, target_column=False)
    upload(uploader, root / "data" / "other-model.csv", iris, 40, target_column=False)
    (landed,) = seen.poll()
    assert landed.name == "uploaded.csv" and landed.size == len(data)
    assert landed.sha256 == landing.sha256(root / "data" / "uploaded.csv")
    seen.commit([landed])

    uploader.pipe(str((root / "data" / "again.csv").path), data)
    assert seen.poll() == [] and watch(root, landing.TRAINING).poll() == []
    assert set(seen.ledger.load()) == {landing.sha256(root / "data" / "iris.csv"), landed.sha256}


def test_the_newest_batch_in_the_inbox_prefix(root: UPath, iris: pd.DataFrame, uploader) -> None:
    inbox = root / "data" / "incoming"
    assert landing.latest(inbox, IRIS.features) is None
    upload(uploader, inbox / "first.csv", iris, 20, target_column=False)
    time.sleep(1.1)  # the store's modification times are to the second
    upload(uploader, inbox / "second.csv", iris, 25, target_column=False)
    assert landing.latest(inbox, IRIS.features) == "second.csv"
    seen = watch(root, landing.SCORING)
    seen.poll()
    upload(uploader, inbox / "third.csv", iris, 10, target_column=False)
    (landed,) = seen.poll()
    assert landed.name == "third.csv"
    assert pd.read_csv(io.BytesIO((inbox / "third.csv").read_bytes())).shape == (10, 4)
