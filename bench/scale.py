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
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import harness
from harness import Report, Target, publish, table

from adclick.workdir import MODEL, candidate_dir

STEPS = ("load_data", "data_preprocessing", "separate_data_outputs", "build_model", "load_model")
BASELINES = ("import", "read_csv", "bare_fit")
ARTIFACTS = ("raw.parquet", "clean.parquet", "train.parquet", "test.parquet")
TARGET_TOTAL_S, TARGET_RSS_MB, LINEAR_EXPONENT_MAX = 60.0, 2048.0, 1.1
RATIOS = {  # row in the report -> (subject, baseline) step times summed
    "load_data / read_csv": (("load_data",), ("read_csv",)),
    "build_model / bare_fit": (("build_model",), ("bare_fit",)),
    "five steps / (read_csv + bare_fit)": (STEPS, ("read_csv", "bare_fit")),
}


def prepared(name: str, workdir: str, csv: str) -> Callable[[], object]:
    """Import what step or baseline ``name`` needs (bare_fit: also load its arrays, which
    is not part of the fit); return the call to time."""
    workdir = Path(workdir)
    if name == "read_csv":
        import pandas as pd

        return lambda: pd.read_csv(csv)
    from adclick import contract

    spec = contract.load_named(contract.DEFAULT_MODEL, Path(__file__).parents[1] / "dags/models")
    if name == "bare_fit":
        import pandas as pd
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        train = pd.read_parquet(workdir / "train.parquet")
        x, y = train[list(spec.features)].to_numpy(), train[spec.target].to_numpy()
        return lambda: LogisticRegression(max_iter=1000).fit(StandardScaler().fit_transform(x), y)
    from adclick import steps

    gate = {"metric": "accuracy", "min": 0.5}
    return {
        "import": lambda: None,
        "load_data": lambda: steps.ingest_csv(Path(csv), workdir, spec),
        "data_preprocessing": lambda: steps.preprocess(workdir, spec),
        "separate_data_outputs": lambda: steps.split_holdout(workdir, spec),
        "build_model": lambda: steps.fit_and_score(workdir, spec),
        "load_model": lambda: steps.register_model(workdir, workdir / "model", spec, gate, "bench"),
    }[name]


def measure(sizes: list[int], repeats: int) -> tuple[dict, dict]:
    """Samples per size and step, and the size of the files between the steps."""
    samples: dict[int, dict[str, list[dict]]] = {n: {} for n in sizes}
    files: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="adclick-scale-") as tmp:
        csvs = {n: harness.generated_csv(Path(tmp) / f"advertising_{n}.csv", n) for n in sizes}
        for rep, rows in itertools.product(range(repeats), sizes):
            workdir = Path(tmp) / f"run-{rows}-{rep}"
            workdir.mkdir()
            for name in ("import", "read_csv", *STEPS, "bare_fit"):  # bare_fit reads train
                sample = harness.run_child(__file__, name, str(workdir), str(csvs[rows]))
                samples[rows].setdefault(name, []).append(sample)
            paths = [
                *(workdir / a for a in ARTIFACTS),
                candidate_dir(workdir, 0) / MODEL,
                csvs[rows],
            ]
            files[rows] = {path.name: round(path.stat().st_size / 2**20, 2) for path in paths}
    return samples, files


def report(f: dict) -> Report:
    """Steps against rows and the baselines; at the largest size, against the targets."""
    at = {int(rows): figures for rows, figures in f["sizes"].items()}
    sizes = sorted(at)

    def work(rows: int, names: tuple[str, ...]) -> float:
        return sum(at[rows]["steps"][n]["work_s"] for n in names)

    def wall(rows: int) -> float:
        return sum(at[rows]["steps"][n]["wall_s"] for n in STEPS)

    def k(small: int, large: int, names: tuple[str, ...]) -> float:
        return math.log(work(large, names) / work(small, names)) / math.log(large / small)

    named = {**{n: (n,) for n in (*STEPS, "read_csv", "bare_fit")}, "total": STEPS}
    growth = {
        f"{small:,}->{large:,}": {name: k(small, large, names) for name, names in named.items()}
        for small, large in itertools.pairwise(sizes)
    }
    top, last = sizes[-1], growth[list(growth)[-1]] if growth else {}
    worst = max(STEPS, key=last.get) if last else None
    peak = max(at[top]["steps"][n]["peak_rss_mb"] for n in STEPS)
    cell = "{work_s:.3f} s / {wall_s:.2f} s / {peak_rss_mb:.0f} MB"
    header = ("step", *(f"{n:,} rows" for n in sizes))
    steps = [
        *((name, *(cell.format(**at[n]["steps"][name]) for n in sizes)) for name in STEPS),
        ("**all five steps**", *(f"**{work(n, STEPS):.2f} s / {wall(n):.2f} s**" for n in sizes)),
        *(
            (f"*{b}* (baseline)", *(cell.format(**at[n]["steps"][b]) for n in sizes))
            for b in BASELINES
        ),
    ]
    ratios = [
        (label, *(f"{work(n, a) / work(n, b):.2f}" for n in sizes))
        for label, (a, b) in RATIOS.items()
    ]
    exponents = [(name, *(f"{g[name]:.2f}" for g in growth.values())) for name in named]
    return Report(
        name="scale",
        title="Scale: pipeline steps on generated data, one fresh process per step",
        method=__doc__.split("\n\n", 2)[2].strip()
        + f"\n\nMedians of {f['repeats']} passes; cells: step time / process wall time / peak RSS.",
        targets=[
            Target(
                f"{top:,} rows end to end <= {TARGET_TOTAL_S:.0f} s",
                f"{work(top, STEPS):.2f} s in the steps, "
                f"{wall(top):.2f} s with the 5 process starts",
                wall(top) <= TARGET_TOTAL_S,
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
    parser = harness.Arguments(__doc__, {"scale": report})
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    samples, files = measure(sorted(args.rows), args.repeats)
    sizes = {
        n: {"files_mb": files[n], "steps": harness.child_medians(s, 4)} for n, s in samples.items()
    }
    publish(report({"repeats": args.repeats, "sizes": sizes}), args.results, samples)
    return 0


if __name__ == "__main__":
    harness.child(prepared)
    sys.exit(main())
