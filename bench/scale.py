"""Scale and batch scoring on generated rows, each step in a fresh process as Airflow runs a task.

``steps``: every pipeline step on 10k, 100k and 1M rows against the baselines ``import`` (a
task's fixed cost), ``read_csv`` and ``bare_fit``. ``scoring``: a champion trained on 10,000
rows scores the largest size through ``adclick.scoring.score_csv`` against a bare ``read_csv`` /
``predict_proba`` / ``to_parquet`` script, then ``adclick.drift.report_batch`` on the result.

    .venv/bin/python bench/scale.py [--measure steps scoring] [--rows 10000 100000 1000000]
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import harness
from harness import Report, Target, cell, table

STEPS = ("load_data", "data_preprocessing", "separate_data_outputs", "build_model", "load_model")
BASELINES = ("import", "read_csv", "bare_fit")
TARGET_TOTAL_S, TARGET_RSS_MB, LINEAR_EXPONENT_MAX = 60.0, 2048.0, 1.1
RATIOS = {  # row in the report -> (subject, baseline) step times summed
    "load_data / read_csv": (("load_data",), ("read_csv",)),
    "build_model / bare_fit": (("build_model",), ("bare_fit",)),
    "five steps / (read_csv + bare_fit)": (STEPS, ("read_csv", "bare_fit")),
}
WAYS = ("import", "bare", "scoring", "evidently_import", "drift")
TRAIN_ROWS = 10_000
TARGET_RATIO, TARGET_SCORING_RSS_MB, TARGET_DRIFT_S = 1.5, 1024.0, 30.0


def step(name: str, workdir: Path, csv: str) -> Callable[[], object]:
    """Import what step or baseline ``name`` needs (bare_fit: also load its arrays)."""
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


def way(name: str, folder: Path, csv: str) -> Callable[[], object]:
    """Import what scoring way ``name`` needs, the model in ``folder``/model."""
    model_dir = folder / "model"
    if name == "bare":
        import joblib
        import pandas as pd

        from adclick.registry import ModelRegistry

        current = ModelRegistry(model_dir).current()
        features = current["metadata"]["features"]

        def bare() -> None:
            model, frame = joblib.load(current["path"]), pd.read_csv(csv)
            frame["probability"] = model.predict_proba(frame[features])[:, 1]
            frame.to_parquet(folder / "bare.parquet")

        return bare
    from adclick import drift

    if name == "evidently_import":
        return drift.load_evidently
    from adclick import scoring

    def score() -> None:
        champion = scoring.load_champion(model_dir)
        scoring.score_csv(Path(csv), champion, folder / f"{champion.version}.parquet")

    def report() -> None:
        version = scoring.load_champion(model_dir).version
        drift.report_batch(model_dir, folder / f"{version}.parquet", version)

    return {"import": lambda: None, "scoring": score, "drift": report}[name]


def run_child(*args: str) -> dict:
    """Wall, work (printed last), CPU time and peak RSS of this script's ``--child args``."""
    started = time.perf_counter()
    command = [sys.executable, __file__, "--child", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{output}")
    cpu, work = usage.ru_utime + usage.ru_stime, float(output.split()[-1])
    return {"wall_s": wall, "work_s": work, "cpu_s": cpu, "peak_rss_mb": usage.ru_maxrss / 1024}


def child(kind: str, name: str, folder: str, csv: str) -> None:
    """In the fresh process: import what ``name`` needs, then time its call alone."""
    call = (step if kind == "steps" else way)(name, Path(folder), csv)
    started = time.perf_counter()
    call()
    print(time.perf_counter() - started)


def medians(samples: dict[str, list[dict]], digits: int = 3) -> dict[str, dict]:
    """Per key, the medians of ``run_child``'s figures (peak RSS: the largest)."""
    median = lambda runs, k: round(statistics.median(r[k] for r in runs), digits)  # noqa: E731
    return {
        key: {k: median(runs, k) for k in ("wall_s", "work_s", "cpu_s")}
        | {"peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1)}
        for key, runs in samples.items()
    }


def generated_csv(path: Path, rows: int) -> str:
    from testkit.advertising import write_csv  # pandas: kept out of the children's imports

    return str(write_csv(path, rows))


def measure_steps(sizes: list[int], repeats: int, tmp: Path) -> tuple[dict, dict]:
    """Medians per size and step (peak RSS: the largest), sizes interleaved; the samples."""
    samples: dict[int, dict[str, list[dict]]] = {n: {} for n in sizes}
    csvs = {n: generated_csv(tmp / f"advertising_{n}.csv", n) for n in sizes}
    for rep, rows in itertools.product(range(repeats), sizes):
        (workdir := tmp / f"run-{rows}-{rep}").mkdir()
        for name in ("import", "read_csv", *STEPS, "bare_fit"):  # bare_fit reads train
            sample = run_child("steps", name, str(workdir), csvs[rows])
            samples[rows].setdefault(name, []).append(sample)
    sizes = {rows: {"steps": medians(s, 4)} for rows, s in samples.items()}
    return {"repeats": repeats, "sizes": sizes}, samples


def measure_scoring(rows: int, repeats: int, tmp: Path) -> tuple[dict, dict]:
    """Medians per way (peak RSS: the largest), the ways in turn; the samples."""
    from adclick.drift import SAMPLE_ROWS

    train = generated_csv(tmp / "train.csv", TRAIN_ROWS)
    batch = generated_csv(tmp / "batch.csv", rows)
    command = [sys.executable, "-m", "adclick", "train", "--data", train, "--model-dir"]
    subprocess.run([*command, str(tmp / "model")], check=True, stdout=subprocess.DEVNULL)
    samples: dict[str, list[dict]] = {}
    for _, name in itertools.product(range(repeats), WAYS):
        samples.setdefault(name, []).append(run_child("scoring", name, str(tmp), batch))
    figures = {"rows": rows, "repeats": repeats, "drift_sample_rows": SAMPLE_ROWS}
    return {**figures, "ways": medians(samples)}, samples


def steps_report(f: dict) -> Report:
    at = {int(rows): figures["steps"] for rows, figures in f["sizes"].items()}
    sizes = sorted(at)

    def work(rows: int, names: tuple[str, ...]) -> float:
        return sum(at[rows][n]["work_s"] for n in names)

    def wall(rows: int) -> float:
        return sum(at[rows][n]["wall_s"] for n in STEPS)

    def k(small: int, large: int, names: tuple[str, ...]) -> float:
        return math.log(work(large, names) / work(small, names)) / math.log(large / small)

    named = {**{n: (n,) for n in (*STEPS, "read_csv", "bare_fit")}, "total": STEPS}
    growth = {
        f"{small:,}->{large:,}": {name: k(small, large, names) for name, names in named.items()}
        for small, large in itertools.pairwise(sizes)
    }
    top, last = sizes[-1], growth[list(growth)[-1]] if growth else {}
    worst = max(STEPS, key=last.get) if last else None
    peak = max(at[top][n]["peak_rss_mb"] for n in STEPS)
    figures = "{work_s:.3f} s / {wall_s:.2f} s / {peak_rss_mb:.0f} MB"
    header = ("step", *(f"{n:,} rows" for n in sizes))
    rows = [(name, *(figures.format(**at[n][name]) for n in sizes)) for name in STEPS]
    total = (f"**{work(n, STEPS):.2f} s / {wall(n):.2f} s**" for n in sizes)
    rows.append(("**all five steps**", *total))
    rows += [(f"*{b}* (baseline)", *(figures.format(**at[n][b]) for n in sizes)) for b in BASELINES]
    ratio = lambda n, a, b: f"{work(n, a) / work(n, b):.2f}"  # noqa: E731
    ratios = [(label, *(ratio(n, a, b) for n in sizes)) for label, (a, b) in RATIOS.items()]
    exponents = [(name, *(f"{g[name]:.2f}" for g in growth.values())) for name in named]
    goals = (
        f"{top:,} rows end to end <= {TARGET_TOTAL_S:.0f} s",
        f"peak RSS <= {TARGET_RSS_MB:.0f} MB in any step",
        f"time ~ rows^k, k <= {LINEAR_EXPONENT_MAX} for every step (last decade)",
    )
    measured = (
        f"{work(top, STEPS):.2f} s in the steps, {wall(top):.2f} s with the 5 process starts",
        f"{peak:.0f} MB",
        f"worst: {worst} k={last[worst]:.2f}" if worst else "one size only",
    )
    linear = bool(worst) and all(last[s] <= LINEAR_EXPONENT_MAX for s in STEPS)
    met = (wall(top) <= TARGET_TOTAL_S, peak <= TARGET_RSS_MB, linear)
    targets = list(map(Target, goals, measured, met))
    sections = [
        table(header, rows),
        "Against the baselines measured in the same run:\n\n"
        + table(("ratio", *header[1:]), ratios),
        "Growth exponent k of step time between sizes (1.0 is linear; a fixed cost pulls it "
        "below 1):\n\n" + table(("step", *growth), exponents),
    ]
    method = (
        f"Each step and baseline in a fresh process, sizes interleaved; medians of {f['repeats']} "
        "passes; cells: step time / process wall time / peak RSS."
    )
    title = "Scale: pipeline steps on generated data, one fresh process per step"
    return Report("scale", title, method, targets, sections, f)


def scoring_report(f: dict) -> Report:
    ways, rows = f["ways"], f["rows"]
    fixed, rss = ways["import"]["wall_s"], ways["scoring"]["peak_rss_mb"]
    drift_s, evidently_s = ways["drift"]["work_s"], ways["evidently_import"]["work_s"]
    ratio = ways["scoring"]["work_s"] / ways["bare"]["work_s"]
    beyond = (ways["scoring"]["wall_s"] - fixed) / (ways["bare"]["wall_s"] - fixed)
    cpu_of = {name: w.get("cpu_s") for name, w in ways.items()}  # absent from older figures
    cpu = None
    if None not in cpu_of.values():
        cpu = (cpu_of["scoring"] - cpu_of["import"]) / (cpu_of["bare"] - cpu_of["import"])
    shown = "{work_s:.2f} s", "{wall_s:.2f} s", "{peak_rss_mb:.0f} MB"
    table_rows = [
        (n, *(x.format(**w) for x in shown[:2]), cell(w.get("cpu_s")) + " s", shown[2].format(**w))
        for n, w in ways.items()
    ]
    goals = (
        f"scoring <= {TARGET_RATIO}x the bare script, beyond the fixed process cost",
        f"scoring peak RSS <= {TARGET_SCORING_RSS_MB:.0f} MB",
        f"drift report on {rows:,} rows <= {TARGET_DRIFT_S:.0f} s",
    )
    measured = (
        f"{beyond:.2f}x (call alone {ratio:.2f}x; CPU time beyond the fixed cost {cell(cpu)}x; "
        f"fixed cost {fixed:.2f} s)",
        f"{rss:.0f} MB",
        f"{drift_s:.2f} s (Evidently's import: {evidently_s:.2f} s)",
    )
    met = (beyond <= TARGET_RATIO, rss <= TARGET_SCORING_RSS_MB, drift_s <= TARGET_DRIFT_S)
    targets = list(map(Target, goals, measured, met))
    method = (
        f"Each way in a fresh process, the ways in turn; medians of {f['repeats']} passes (peak "
        f"RSS: the largest). The drift report compares a random sample of "
        f"{f['drift_sample_rows']:,} of the batch's rows (its page and JSON say so) with the "
        "5,000-row training sample of the version."
    )
    sections = [table(("way", "work", "process wall", "process CPU", "peak RSS"), table_rows)]
    title = f"Batch scoring and drift reports on {rows:,} rows"
    return Report("scoring", title, method, targets, sections, f)


def main(argv: list[str] | None = None) -> int:
    parser = harness.Arguments(__doc__, {"scale": steps_report, "scoring": scoring_report})
    parser.add_argument("--measure", nargs="+", choices=("steps", "scoring"), default=["steps"])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    measures = {"steps": (measure_steps, sorted(args.rows), steps_report)}
    measures["scoring"] = (measure_scoring, max(args.rows), scoring_report)
    for name in args.measure:
        measure, rows, report = measures[name]
        with tempfile.TemporaryDirectory(prefix=f"adclick-bench-{name}-") as tmp:
            figures, samples = measure(rows, args.repeats, Path(tmp))
        harness.publish(report(figures), args.results, samples)
    return 0


if __name__ == "__main__":
    sys.exit(child(*sys.argv[2:]) if sys.argv[1:2] == ["--child"] else main())
