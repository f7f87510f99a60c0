"""Scale: every pipeline step on 10k, 100k and 1M generated rows, one fresh process per step.

    .venv/bin/python bench/scale.py [--rows 10000 100000 1000000] [--repeats 3]

Measures, for each step (``adclick.steps.<step>`` in its own process, as Airflow runs a task)
over a fresh run directory: the process wall time, the step call alone (``work``) and the
peak RSS (``os.wait4``). Against baselines measured in the same processes' way: ``import``
(a process that only imports the steps: a task's fixed cost), ``read_csv`` (pandas reading
the same CSV: what load_data must do) and ``bare_fit`` (scaler + logistic regression on the
same training rows as arrays: what build_model must do). Targets: 1M rows in <= 60 s end to
end, <= 2 GB peak RSS in any step, time ~ rows^k with k <= 1.1 for every step.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness import Report, Target, arguments, publish, pyplot, table

from adclick.workdir import MODEL, candidate_dir

STEPS = ("load_data", "data_preprocessing", "separate_data_outputs", "build_model", "load_model")
BASELINES = ("import", "read_csv", "bare_fit")
ARTIFACTS = ("raw.parquet", "clean.parquet", "train.parquet", "test.parquet", MODEL)
TARGET_TOTAL_S = 60.0
TARGET_RSS_MB = 2048.0
LINEAR_EXPONENT_MAX = 1.1
RATIOS = {  # key in the summary -> row in the report
    "load_data_over_read_csv": "load_data / read_csv",
    "build_model_over_bare_fit": "build_model / bare_fit",
    "steps_over_read_csv_plus_fit": "five steps / (read_csv + bare_fit)",
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


def artifact(workdir: Path, name: str) -> Path:
    """Where a run leaves ``name``: the model in its (only) candidate's directory."""
    return candidate_dir(workdir, 0) / name if name == MODEL else workdir / name


def child(name: str, workdir: Path, csv: Path, result: Path) -> None:
    """In the fresh process: run one step or baseline, write its timings to ``result``."""
    import resource

    call = prepared(name, workdir, csv)
    imported = time.perf_counter()
    rss_imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    call()
    work = time.perf_counter() - imported if name != "import" else 0.0
    result.write_text(json.dumps({"work_s": work, "rss_after_import_mb": rss_imported}))


def run_child(name: str, workdir: Path, csv: Path) -> dict:
    """Wall time, step time and peak RSS of one fresh process running ``name``."""
    result = workdir / f".{name}.json"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", name, str(workdir), str(csv), str(result)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{name} on {csv.name} failed:\n{output.decode()}")
    timings = json.loads(result.read_text())
    result.unlink()
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, **timings}


def measure(sizes: list[int], repeats: int) -> tuple[dict, dict]:
    """Samples per size and step; sizes interleaved within each repetition, so machine drift
    spreads over all of them. Also the CSV and artifact sizes."""
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
            files[rows] = {a: artifact(workdir, a).stat().st_size / 2**20 for a in ARTIFACTS}
            files[rows]["csv"] = csvs[rows].stat().st_size / 2**20
            work = sum(samples[rows][s][-1]["work_s"] for s in STEPS)
            print(f"pass {rep + 1}/{repeats} {rows:>9} rows: steps {work:.2f} s", flush=True)
    return samples, files


def summarize(samples: dict, files: dict) -> dict:
    """Medians per step (peak RSS: the maximum), totals, ratios and growth exponents."""

    def figures(runs: list[dict]) -> dict:
        return {
            "wall_s": round(statistics.median(s["wall_s"] for s in runs), 4),
            "work_s": round(statistics.median(s["work_s"] for s in runs), 4),
            "peak_rss_mb": round(max(s["peak_rss_mb"] for s in runs), 1),
            "rss_growth_mb": round(
                max(s["peak_rss_mb"] - s["rss_after_import_mb"] for s in runs), 1
            ),
        }

    per_size = {}
    for rows, by_name in samples.items():
        steps = {name: figures(by_name[name]) for name in (*BASELINES, *STEPS)}
        work = {name: step["work_s"] for name, step in steps.items()}
        total = sum(work[s] for s in STEPS)
        ratios = (
            work["load_data"] / work["read_csv"],
            work["build_model"] / work["bare_fit"],
            total / (work["read_csv"] + work["bare_fit"]),
        )
        per_size[rows] = {
            "steps": steps,
            "total_work_s": round(total, 3),
            "total_wall_s": round(sum(steps[s]["wall_s"] for s in STEPS), 3),
            "max_peak_rss_mb": max(steps[s]["peak_rss_mb"] for s in STEPS),
            **{key: round(r, 2) for key, r in zip(RATIOS, ratios, strict=True)},
            "files_mb": {k: round(v, 2) for k, v in files[rows].items()},
        }

    def work_s(rows: int, name: str) -> float:
        at = per_size[rows]
        return at["total_work_s"] if name == "total" else at["steps"][name]["work_s"]

    growth = {
        f"{small}->{large}": {
            name: round(
                math.log(work_s(large, name) / work_s(small, name)) / math.log(large / small), 2
            )
            for name in (*STEPS, "read_csv", "bare_fit", "total")
        }
        for small, large in itertools.pairwise(sorted(per_size))
    }
    return {"sizes": per_size, "growth_exponents": growth}


def report(summary: dict, repeats: int) -> Report:
    """The Report of ``summarize``'s figures; at the largest size, against the targets."""
    at, growth = summary["sizes"], summary["growth_exponents"]
    sizes = sorted(at)
    top = at[sizes[-1]]
    last = growth[list(growth)[-1]] if growth else {}
    worst = max(STEPS, key=last.get) if last else None

    def cells(name: str) -> list[str]:
        cell = "{work_s:.3f} s / {wall_s:.2f} s / {peak_rss_mb:.0f} MB"
        return [cell.format(**at[n]["steps"][name]) for n in sizes]

    header = ("step", *(f"{n:,} rows" for n in sizes))
    all_steps = "{total_work_s:.2f} s / {total_wall_s:.2f} s / {max_peak_rss_mb:.0f} MB"
    steps = [
        *((name, *cells(name)) for name in STEPS),
        ("**all five steps**", *(all_steps.format(**at[n]) for n in sizes)),
        *((f"*{name}* (baseline)", *cells(name)) for name in BASELINES),
    ]
    ratios = [
        *((label, *(at[n][key] for n in sizes)) for key, label in RATIOS.items()),
        *(
            (
                f"peak RSS beyond imports, {name} (MB)",
                *(at[n]["steps"][name]["rss_growth_mb"] for n in sizes),
            )
            for name in (*STEPS, "read_csv", "bare_fit")
        ),
        ("CSV (MB)", *(at[n]["files_mb"]["csv"] for n in sizes)),
    ]
    exponents = [
        (name, *(g[name] for g in growth.values()))
        for name in (*STEPS, "total", "read_csv", "bare_fit")
    ]
    return Report(
        name="scale",
        title="Scale: pipeline steps on generated data, one fresh process per step",
        method=__doc__.split("\n\n", 2)[2].strip()
        + f"\n\nMedians of {repeats} passes; cells: step time / process wall time / peak RSS.",
        targets=[
            Target(
                f"{sizes[-1]:,} rows end to end <= {TARGET_TOTAL_S:.0f} s",
                f"{top['total_work_s']:.2f} s in the steps, {top['total_wall_s']:.2f} s with the "
                "5 process starts",
                top["total_wall_s"] <= TARGET_TOTAL_S,
            ),
            Target(
                f"peak RSS <= {TARGET_RSS_MB:.0f} MB in any step",
                f"{top['max_peak_rss_mb']:.0f} MB",
                top["max_peak_rss_mb"] <= TARGET_RSS_MB,
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
            f"Files between steps at {sizes[-1]:,} rows (MB): "
            + ", ".join(f"{k} {v}" for k, v in top["files_mb"].items())
            + ".",
        ],
        data={"repeats": repeats, **summary},
        plot=lambda path: plot(summary, path),
    )


def plot(summary: dict, path: Path) -> None:
    """Step time and peak RSS against rows, log-log, with the targets."""
    plt = pyplot()
    at = summary["sizes"]
    sizes = sorted(at)

    def series(key: str, name: str | None = None) -> list[float]:
        return [at[n][key] if name is None else at[n]["steps"][name][key] for n in sizes]

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for name in (*STEPS, "read_csv", "bare_fit"):
        style = "--" if name in BASELINES else "-"
        left.plot(sizes, series("work_s", name), style, marker="o", label=name)
        right.plot(sizes, series("peak_rss_mb", name), style, marker="o", label=name)
    left.plot(sizes, series("total_work_s"), "k-", marker="s", label="all five steps")
    linear = [at[sizes[0]]["total_work_s"] * n / sizes[0] for n in sizes]
    left.plot(sizes, linear, "k:", label="linear")
    left.axhline(TARGET_TOTAL_S, color="red", linestyle=":", label="target")
    right.plot(sizes, series("peak_rss_mb", "import"), "k:", marker="s", label="import only")
    right.axhline(TARGET_RSS_MB, color="red", linestyle=":", label="target")
    for axis, title in ((left, "step time (s)"), (right, "peak RSS of the step's process (MB)")):
        axis.set(xscale="log", yscale="log", xlabel="rows", title=title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--child"]:
        name, workdir, csv, result = sys.argv[2:6]
        child(name, Path(workdir), Path(csv), Path(result))
        return 0
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    samples, files = measure(sorted(args.rows), args.repeats)
    publish(report(summarize(samples, files), args.repeats), args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
