"""Scale: every pipeline step on 10k, 100k and 1M generated rows, one fresh process per step.

    .venv/bin/python bench/scale.py [--rows 10000 100000 1000000] [--repeats 3]

Each step (``adclick.steps.<step>`` in its own process, as Airflow runs a task) over a fresh
run directory: the process wall time, the step call alone (``work``) and the peak RSS
(``os.wait4``). Baselines measured the same way: ``import`` (a process that only imports the
steps: a task's fixed cost), ``read_csv`` (pandas reading the CSV: what load_data must do) and
``bare_fit`` (scaler + logistic regression on the training rows as arrays: what build_model
must do). Sizes are interleaved within each pass, so machine drift spreads over all of them.
"""

from __future__ import annotations

import itertools
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import harness
from harness import Report, Target, arguments, publish, rebuild, table

from adclick.workdir import MODEL, candidate_dir

STEPS = ("load_data", "data_preprocessing", "separate_data_outputs", "build_model", "load_model")
BASELINES = ("import", "read_csv", "bare_fit")
ARTIFACTS = ("raw.parquet", "clean.parquet", "train.parquet", "test.parquet")
TARGET_TOTAL_S = 60.0
TARGET_RSS_MB = 2048.0
LINEAR_EXPONENT_MAX = 1.1
RATIOS = {  # row in the report -> (subject, baseline) step times summed
    "load_data / read_csv": (("load_data",), ("read_csv",)),
    "build_model / bare_fit": (("build_model",), ("bare_fit",)),
    "five steps / (read_csv + bare_fit)": (STEPS, ("read_csv", "bare_fit")),
}


def prepared(name: str, workdir: Path, csv: Path) -> Callable[[], object]:
    """Import what step or baseline ``name`` needs (bare_fit: also load its arrays, which
    is not part of the fit); return the call to time."""
    if name == "read_csv":
        import pandas as pd

        return lambda: pd.read_csv(csv)
    if name == "bare_fit":
        import pandas as pd
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        spec = _adclick()
        train = pd.read_parquet(workdir / "train.parquet")
        x, y = train[list(spec.features)].to_numpy(), train[spec.target].to_numpy()
        return lambda: LogisticRegression(max_iter=1000).fit(StandardScaler().fit_transform(x), y)
    from adclick import steps

    spec = _adclick()
    return {
        "import": lambda: None,
        "load_data": lambda: steps.ingest_csv(csv, workdir, spec),
        "data_preprocessing": lambda: steps.preprocess(workdir, spec),
        "separate_data_outputs": lambda: steps.split_holdout(workdir, spec),
        "build_model": lambda: steps.fit_and_score(workdir, spec),
        "load_model": lambda: steps.register_model(
            workdir, workdir / "model", spec, {"metric": "accuracy", "min": 0.5}, run_id="bench"
        ),
    }[name]


def _adclick():  # the ModelSpec; adclick loads with the steps only
    from adclick import contract

    return contract.load_named(
        contract.DEFAULT_MODEL, Path(__file__).parents[1] / "dags" / "models"
    )


def child(name: str, workdir: Path, csv: Path) -> None:
    """In the fresh process: run one step or baseline; print the call's seconds last."""
    call = prepared(name, workdir, csv)
    started = time.perf_counter()
    call()
    print(time.perf_counter() - started if name != "import" else 0.0)


def run_child(name: str, workdir: Path, csv: Path) -> dict:
    """Wall time, step time and peak RSS of one fresh process running ``name``."""
    return harness.run_child(__file__, name, str(workdir), str(csv))


def measure(sizes: list[int], repeats: int) -> tuple[dict, dict]:
    """Samples per size and step, and the size of the files between the steps."""
    samples: dict[int, dict[str, list[dict]]] = {n: {} for n in sizes}
    files: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="adclick-scale-") as tmp:
        csvs = {n: Path(tmp) / f"advertising_{n}.csv" for n in sizes}
        for rows, csv in csvs.items():
            command = ["-m", "testkit.advertising", "--rows", str(rows), "--out", str(csv)]
            subprocess.run([sys.executable, *command], check=True, stdout=subprocess.DEVNULL)
        for rep, rows in itertools.product(range(repeats), sizes):
            workdir = Path(tmp) / f"run-{rows}-{rep}"
            workdir.mkdir()
            for name in ("import", "read_csv", *STEPS, "bare_fit"):  # bare_fit reads train
                samples[rows].setdefault(name, []).append(run_child(name, workdir, csvs[rows]))
            paths = [workdir / a for a in ARTIFACTS] + [
                candidate_dir(workdir, 0) / MODEL,
                csvs[rows],
            ]
            files[rows] = {path.name: round(path.stat().st_size / 2**20, 2) for path in paths}
            work = sum(samples[rows][s][-1]["work_s"] for s in STEPS)
            print(f"pass {rep + 1}/{repeats} {rows:>9} rows: steps {work:.2f} s", flush=True)
    return samples, files


def summarize(samples: dict, files: dict, repeats: int) -> dict:
    """Medians per size and step (peak RSS: the maximum), and the files between the steps."""
    sizes = {}
    for rows, by_name in samples.items():
        sizes[rows] = {"files_mb": files[rows], "steps": {}}
        for name, runs in by_name.items():
            sizes[rows]["steps"][name] = {
                "wall_s": round(statistics.median(s["wall_s"] for s in runs), 4),
                "work_s": round(statistics.median(s["work_s"] for s in runs), 4),
                "peak_rss_mb": round(max(s["peak_rss_mb"] for s in runs), 1),
            }
    return {"repeats": repeats, "sizes": sizes}


def report(f: dict) -> Report:
    """Steps against rows and the baselines; at the largest size, against the targets."""
    at = {int(rows): figures for rows, figures in f["sizes"].items()}
    sizes = sorted(at)

    def work(rows: int, names: tuple[str, ...]) -> float:
        return sum(at[rows]["steps"][n]["work_s"] for n in names)

    def total(rows: int, key: str) -> float:
        return sum(at[rows]["steps"][n][key] for n in STEPS)

    growth = {
        f"{small:,}->{large:,}": {
            name: math.log(work(large, names) / work(small, names)) / math.log(large / small)
            for name, names in (
                *((n, (n,)) for n in (*STEPS, "read_csv", "bare_fit")),
                ("total", STEPS),
            )
        }
        for small, large in itertools.pairwise(sizes)
    }
    top, last = sizes[-1], growth[list(growth)[-1]] if growth else {}
    worst = max(STEPS, key=last.get) if last else None
    peak = max(at[top]["steps"][n]["peak_rss_mb"] for n in STEPS)

    def cells(name: str) -> list[str]:
        return [
            "{work_s:.3f} s / {wall_s:.2f} s / {peak_rss_mb:.0f} MB".format(**at[n]["steps"][name])
            for n in sizes
        ]

    header = ("step", *(f"{n:,} rows" for n in sizes))
    steps = [
        *((name, *cells(name)) for name in STEPS),
        (
            "**all five steps**",
            *(f"**{work(n, STEPS):.2f} s / {total(n, 'wall_s'):.2f} s**" for n in sizes),
        ),
        *((f"*{name}* (baseline)", *cells(name)) for name in BASELINES),
    ]
    ratios = [
        (label, *(f"{work(n, a) / work(n, b):.2f}" for n in sizes))
        for label, (a, b) in RATIOS.items()
    ]
    names = (*STEPS, "read_csv", "bare_fit", "total")
    exponents = [(name, *(f"{g[name]:.2f}" for g in growth.values())) for name in names]
    return Report(
        name="scale",
        title="Scale: pipeline steps on generated data, one fresh process per step",
        method=__doc__.split("\n\n", 2)[2].strip()
        + f"\n\nMedians of {f['repeats']} passes; cells: step time / process wall time / peak RSS.",
        targets=[
            Target(
                f"{top:,} rows end to end <= {TARGET_TOTAL_S:.0f} s",
                f"{work(top, STEPS):.2f} s in the steps, "
                f"{total(top, 'wall_s'):.2f} s with the 5 process starts",
                total(top, "wall_s") <= TARGET_TOTAL_S,
            ),
            Target(
                f"peak RSS <= {TARGET_RSS_MB:.0f} MB in any step",
                f"{peak:.0f} MB",
                peak <= TARGET_RSS_MB,
            ),
            Target(
                f"time ~ rows^k, k <= {LINEAR_EXPONENT_MAX} for every step (last decade)",
                f"worst: {worst} k={last[worst]:.2f}" if worst else "one size only",
                bool(worst) and all(last[s] <= LINEAR_EXPONENT_MAX for s in STEPS),
            ),
        ],
        sections=[
            table(header, steps),
            "Against the baselines measured in the same run:\n\n"
            + table(("ratio", *header[1:]), ratios),
            "Growth exponent k of step time between sizes (1.0 is linear; a fixed cost pulls it "
            "below 1):\n\n" + table(("step", *growth), exponents),
            f"Files between steps at {top:,} rows (MB): "
            + ", ".join(f"{k} {v}" for k, v in at[top]["files_mb"].items())
            + ".",
        ],
        figures=f,
    )


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return 0
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.rebuild:
        return rebuild({"scale": report}, args.results)
    samples, files = measure(sorted(args.rows), args.repeats)
    publish(report(summarize(samples, files, args.repeats)), args.results, samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
