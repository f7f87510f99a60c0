"""Batch scoring and drift reports on 1M generated rows, one fresh process each.

    .venv/bin/python bench/scoring.py [--rows 1000000] [--repeats 2]

A champion of the ad-click model is trained on 10,000 generated rows; a CSV of ``--rows``
generated rows is then scored, each way in its own process (as Airflow runs a task), timed
(process wall time, the call alone, ``work``, and the process's CPU time) with its peak
RSS (``os.wait4``):
``scoring`` (:func:`adclick.scoring.score_csv` with the champion, its hash checked: Parquet
and CSV out, a chunk at a time), against the baseline ``bare`` (one script: ``pd.read_csv``,
``predict_proba``, ``to_parquet``, the model loaded unchecked) and ``import`` (a process that
only imports the scoring code: the fixed cost); then ``drift`` (:func:`adclick.drift.report_batch`
on the scored file, Evidently's import included in its work) and ``evidently_import``
(importing Evidently alone). The ways alternate within each pass.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import harness
from harness import Report, Target, cell, publish, table

WAYS = ("import", "bare", "scoring", "evidently_import", "drift")
TRAIN_ROWS = 10_000
TARGET_RATIO, TARGET_RSS_MB, TARGET_DRIFT_S = 1.5, 1024.0, 30.0


def prepared(way: str, model_dir: str, csv: str, out: str) -> Callable[[], object]:
    """Import what ``way`` needs; return the call to time."""
    model_dir, out = Path(model_dir), Path(out)
    if way == "bare":
        import joblib
        import pandas as pd

        from adclick.registry import ModelRegistry

        current = ModelRegistry(model_dir).current()
        features = current["metadata"]["features"]

        def bare() -> None:
            model = joblib.load(current["path"])
            frame = pd.read_csv(csv)
            frame["probability"] = model.predict_proba(frame[features])[:, 1]
            frame.to_parquet(out / "bare.parquet")

        return bare
    from adclick import drift

    if way == "evidently_import":
        return drift.load_evidently
    from adclick import scoring

    def score() -> None:
        champion = scoring.load_champion(model_dir)
        scoring.score_csv(Path(csv), champion, out / f"{champion.version}.parquet")

    def report() -> None:
        version = scoring.load_champion(model_dir).version
        drift.report_batch(model_dir, out / f"{version}.parquet", version)

    return {"import": lambda: None, "scoring": score, "drift": report}[way]


def measure(rows: int, repeats: int) -> dict[str, list[dict]]:
    samples: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="adclick-bench-scoring-") as tmp:
        folder, model_dir = Path(tmp), Path(tmp) / "model"
        train = harness.generated_csv(folder / "train.csv", TRAIN_ROWS)
        batch = harness.generated_csv(folder / "batch.csv", rows)
        command = [sys.executable, "-m", "adclick", "train", "--data", str(train)]
        subprocess.run(
            [*command, "--model-dir", str(model_dir)], check=True, stdout=subprocess.DEVNULL
        )
        for _ in range(repeats):
            for way in WAYS:
                args = (way, str(model_dir), str(batch), str(folder))
                samples.setdefault(way, []).append(harness.run_child(__file__, *args))
    return samples


def report(f: dict) -> Report:
    ways = f["ways"]
    fixed = ways["import"]["wall_s"]
    ratio = ways["scoring"]["work_s"] / ways["bare"]["work_s"]
    beyond = (ways["scoring"]["wall_s"] - fixed) / (ways["bare"]["wall_s"] - fixed)
    cpu_of = {way: w.get("cpu_s") for way, w in ways.items()}  # absent from older figures
    cpu = None
    if None not in cpu_of.values():
        cpu = (cpu_of["scoring"] - cpu_of["import"]) / (cpu_of["bare"] - cpu_of["import"])
    rss, drift_s = ways["scoring"]["peak_rss_mb"], ways["drift"]["work_s"]
    rows = [
        (
            way,
            f"{w['work_s']:.2f} s",
            f"{w['wall_s']:.2f} s",
            cell(w.get("cpu_s")) + " s",
            f"{w['peak_rss_mb']:.0f} MB",
        )
        for way, w in ways.items()
    ]
    return Report(
        name="scoring",
        title=f"Batch scoring and drift reports on {f['rows']:,} rows",
        method=__doc__.split("\n\n", 2)[2].strip()
        + f"\n\nMedians of {f['repeats']} passes (peak RSS: the largest). The drift report "
        f"compares a random sample of {f['drift_sample_rows']:,} of the batch's rows (its "
        "page and JSON say so) with the 5,000-row training sample of the version.",
        targets=[
            Target(
                f"scoring <= {TARGET_RATIO}x the bare script, beyond the fixed process cost",
                f"{beyond:.2f}x (call alone {ratio:.2f}x; CPU time beyond the fixed cost "
                f"{cell(cpu)}x; fixed cost {fixed:.2f} s)",
                beyond <= TARGET_RATIO,
            ),
            Target(
                f"scoring peak RSS <= {TARGET_RSS_MB:.0f} MB", f"{rss:.0f} MB", rss <= TARGET_RSS_MB
            ),
            Target(
                f"drift report on {f['rows']:,} rows <= {TARGET_DRIFT_S:.0f} s",
                f"{drift_s:.2f} s (Evidently's import: {ways['evidently_import']['work_s']:.2f} s)",
                drift_s <= TARGET_DRIFT_S,
            ),
        ],
        sections=[table(("way", "work", "process wall", "process CPU", "peak RSS"), rows)],
        figures=f,
    )


def main(argv: list[str] | None = None) -> int:
    parser = harness.Arguments(__doc__, {"scoring": report})
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    from adclick.drift import SAMPLE_ROWS

    samples = measure(args.rows, args.repeats)
    figures = {"rows": args.rows, "repeats": args.repeats, "drift_sample_rows": SAMPLE_ROWS}
    publish(report({**figures, "ways": harness.child_medians(samples)}), args.results, samples)
    return 0


if __name__ == "__main__":
    harness.child(prepared)
    sys.exit(main())
