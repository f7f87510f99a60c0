"""Pipeline latency with the storage roots in an object store vs local directories.

    .venv/bin/python bench/object_storage.py [--runs 5] [--results DIR]

Two embedded stacks with the shipped settings run side by side: one with data, model registry
and run directories in local folders (the embedded default), one with all three in a real
SeaweedFS S3 server (the dev lock's ``weed``, on 127.0.0.1). Training runs alternate between
them, one at a time, each after the monitor run the previous one started has finished, so
both see the same machine. Reported: trigger -> success of each, and the ratio of medians
against the target.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

from harness import (
    Report,
    Target,
    alternating,
    arguments,
    embedded_stack,
    patient_client,
    publish,
    settled_run,
    spread,
    table,
)

from adclick_airflow.settings import TRAINING_DAG_ID
from testkit.datasets import SAMPLE_CSV
from testkit.objectstore import BUCKET, running_weed

RATIO_TARGET = 1.2


def object_roots(store) -> dict[str, str]:
    base = f"s3://{BUCKET}/bench"
    return {
        "ADCLICK_DATA_DIR": f"{base}/data",
        "ADCLICK_MODEL_DIR": f"{base}/model",
        "ADCLICK_ARTIFACT_DIR": f"{base}/artifacts",
        **store.env(),
    }


def measure(runs: int) -> dict[str, list[dict]]:
    with (
        tempfile.TemporaryDirectory(prefix="adclick-bench-s3-") as tmp,
        running_weed(Path(tmp)) as store,
    ):
        store.filesystem("writer").put(str(SAMPLE_CSV), f"{BUCKET}/bench/data/advertising.csv")
        with embedded_stack() as local, embedded_stack(extra_env=object_roots(store)) as remote:
            clients = {"local": patient_client(local), "object store": patient_client(remote)}
            for client in clients.values():
                client.set_paused(TRAINING_DAG_ID, False)
            trials = {name: partial(settled_run, c, TRAINING_DAG_ID) for name, c in clients.items()}
            samples = alternating(trials, runs)
    return samples


def report(samples: dict[str, list[dict]]) -> Report:
    figures = {name: spread(s["wall_s"] for s in runs) for name, runs in samples.items()}
    ratio = round(figures["object store"]["median"] / figures["local"]["median"], 3)
    rows = [
        (name, f["n"], f["median"], f["p90"], f["min"], f["max"]) for name, f in figures.items()
    ]
    return Report(
        name="object_storage",
        title="Pipeline latency: object store vs local directories",
        method=__doc__.split("\n\n", 2)[2].strip(),
        targets=[
            Target(
                f"object store median ≤ {RATIO_TARGET}× local, same run",
                f"{figures['object store']['median']} s vs {figures['local']['median']} s: "
                f"{ratio}×",
                ratio <= RATIO_TARGET,
            )
        ],
        sections=[table(("storage roots", "runs", "median s", "p90 s", "min s", "max s"), rows)],
        data={"ratio": ratio, "figures": figures, "samples": samples},
    )


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    publish(report(measure(args.runs)), args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
