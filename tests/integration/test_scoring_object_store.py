"""Batch scoring with the data root and the registry in a real object store (SeaweedFS's
``weed`` serving S3): the predictions appear as two whole objects, one upload each; a batch
that fails leaves no object at all."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pandas as pd
import pytest
from upath import UPath

from adclick import contract, scoring, steps, storage
from adclick.errors import DataValidationError
from testkit import fixture_models
from testkit.objectstore import BUCKET, ObjectStore

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix(s3_env: ObjectStore) -> UPath:
    return storage.location(f"s3://{BUCKET}/{uuid.uuid4().hex}")


def test_a_batch_in_the_bucket_is_scored_into_the_bucket_whole_or_not_at_all(
    prefix: UPath, tmp_path: Path
) -> None:
    data = fixture_models.export_csv("iris", tmp_path)
    spec = contract.load_module(fixture_models.module("iris"))
    steps.run(data, prefix / "model", prefix / "work", spec, run_id="seed")
    champion = scoring.load_champion(prefix / "model")
    rows = pd.read_csv(data).drop(columns=["species"])
    batch = prefix / "data" / scoring.INCOMING_DIR / "monday.csv"
    batch.write_bytes(rows.to_csv(index=False).encode())

    parquet, csv = scoring.prediction_paths(prefix / "data", batch, champion.version)
    summary = scoring.score_csv(batch, champion, parquet, csv, root=prefix / "data", chunk_rows=40)

    assert summary["rows"] == 150 and summary["chunks"] == 4
    scored = pd.read_parquet(io.BytesIO(parquet.read_bytes()))
    assert set(scored["model_version"]) == {champion.version} and len(scored) == 150
    predictions = prefix / "data" / scoring.PREDICTIONS_DIR
    assert sorted(info.name for info in storage.objects(predictions)) == [
        f"monday/{champion.version}.csv",
        f"monday/{champion.version}.parquet",
    ]

    broken = prefix / "data" / scoring.INCOMING_DIR / "tuesday.csv"
    text = rows.to_csv(index=False).splitlines()
    text[100] = "5.1,3.5,1.4,oops"
    broken.write_bytes(("\n".join(text) + "\n").encode())
    parquet, csv = scoring.prediction_paths(prefix / "data", broken, champion.version)
    with pytest.raises(DataValidationError, match="line 101: not a number"):
        scoring.score_csv(broken, champion, parquet, csv, root=prefix / "data", chunk_rows=40)
    assert not any(info.name.startswith("tuesday/") for info in storage.objects(predictions))
