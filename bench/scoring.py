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

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import harness
from harness import Report, Target, arguments, publish, rebuild, table

WAYS = ("import", "bare", "scoring", "evidently_import", "drift")
TRAIN_ROWS = 10_000
TARGET_RATIO = 1.5
TARGET_RSS_MB = 1024.0
TARGET_DRIFT_S = 30.0


def prepared(way: str, model_dir: Path, csv: Path, out: Path) -> Callable[[], object]:
    """Import what ``way`` needs; return the call to time."""
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
    if way == "evidently_import":
        from adclick import drift

        return drift.load_evidently
    from adclick import drift, scoring

    def score() -> None:
        champion = scoring.load_champion(model_dir)
        scoring.score_csv(csv, champion, out / f"{champion.version}.parquet")

    def report() -> None:
        version = scoring.load_champion(model_dir).version
        drift.report_batch(model_dir, out / f"{version}.parquet", version)

    return {"import": lambda: None, "scoring": score, "drift": report}[way]


def child(way: str, model_dir: Path, csv: Path, out: Path) -> None:
    """In the fresh process: run one way; print the call's seconds last."""
    call = prepared(way, model_dir, csv, out)
    started = time.perf_counter()
    call()
    print(time.perf_counter() - started)


def measure(rows: int, repeats: int) -> dict[str, list[dict]]:
    samples: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="adclick-bench-scoring-") as tmp:
        folder = Path(tmp)
        for name, count in (("train", TRAIN_ROWS), ("batch", rows)):
            command = ["-m", "testkit.advertising", "--rows", str(count)]
            subprocess.run(
                [sys.executable, *command, "--out", str(folder / f"{name}.csv")],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        model_dir = folder / "model"
        train = ["-m", "adclick", "train", "--data", folder / "train.csv"]
        subprocess.run(
            [sys.executable, *map(str, train), "--model-dir", str(model_dir)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for rep in range(repeats):
            for way in WAYS:
                args = (way, str(model_dir), str(folder / "batch.csv"), str(folder))
                samples.setdefault(way, []).append(harness.run_child(__file__, *args))
            print(
                f"pass {rep + 1}/{repeats}: "
                + ", ".join(f"{w} {samples[w][-1]['work_s']:.2f} s" for w in WAYS),
                flush=True,
            )
    return samples


def summarize(samples: dict[str, list[dict]], rows: int, repeats: int) -> dict:
    """Medians per way (peak RSS: the maximum)."""
    from adclick import drift

    ways = {
        way: {
            "wall_s": round(statistics.median(s["wall_s"] for s in runs), 3),
            "work_s": round(statistics.median(s["work_s"] for s in runs), 3),
            "cpu_s": round(statistics.median(s["cpu_s"] for s in runs), 3),
            "peak_rss_mb": round(max(s["peak_rss_mb"] for s in runs), 1),
        }
        for way, runs in samples.items()
    }
    return {"rows": rows, "repeats": repeats, "drift_sample_rows": drift.SAMPLE_ROWS, "ways": ways}


def report(f: dict) -> Report:
    ways = f["ways"]
    fixed = ways["import"]["wall_s"]
    ratio = ways["scoring"]["work_s"] / ways["bare"]["work_s"]
    beyond = (ways["scoring"]["wall_s"] - fixed) / (ways["bare"]["wall_s"] - fixed)
    cpu_of = {way: w.get("cpu_s") for way, w in ways.items()}  # absent from older figures
    cpu = (
        (cpu_of["scoring"] - cpu_of["import"]) / (cpu_of["bare"] - cpu_of["import"])
        if None not in cpu_of.values()
        else None
    )
    rss = ways["scoring"]["peak_rss_mb"]
    drift_s = ways["drift"]["work_s"]
    rows = [
        (
            way,
            f"{w['work_s']:.2f} s",
            f"{w['wall_s']:.2f} s",
            harness.cell(w.get("cpu_s")) + " s",
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
                f"{harness.cell(cpu)}x; fixed cost {fixed:.2f} s)",
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
    if argv is None and sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
        return 0
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    if args.rebuild:
        return rebuild({"scoring": report}, args.results)
    samples = measure(args.rows, args.repeats)
    publish(report(summarize(samples, args.rows, args.repeats)), args.results, samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
