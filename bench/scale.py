"""Scale: every pipeline step on 10k, 100k and 1M generated rows, each in a fresh process.

    .venv/bin/python bench/scale.py [--rows 10000 100000 1000000] [--repeats 3]

Generates the CSVs with the project's generator (``python -m adclick generate``), then runs
``adclick.steps.<step>`` one process per step, as Airflow runs one task per step, over a
fresh run directory per repetition. For every step it records the process wall time, the
time of the step call alone (``work``: the process minus interpreter start and imports) and
the process's peak RSS (``os.wait4``). Measured in the same run, as baselines:

* ``import``: a process that only imports ``adclick.steps`` (the fixed cost of a task);
* ``read_csv``: ``pandas.read_csv`` of the same CSV, all columns (what ``load_data`` must do);
* ``bare_fit``: ``StandardScaler`` + ``LogisticRegression.fit`` on the same training rows as
  NumPy arrays (what ``build_model`` must do).

Targets: 1M rows <= 60 s of compute end to end, <= 2 GB peak RSS in any
step, near-linear growth (reported as the exponent k of time ~ rows^k between sizes; 1.0 is
linear). Writes bench/results/scale.{md,json,png}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support import REPO_ROOT, write_results

STEPS = ("load_data", "data_preprocessing", "separate_data_outputs", "build_model", "load_model")
BASELINES = ("import", "read_csv", "bare_fit")
ARTIFACTS = ("raw.parquet", "clean.parquet", "train.parquet", "test.parquet", "model.joblib")
TARGET_TOTAL_S = 60.0
TARGET_RSS_MB = 2048.0
LINEAR_EXPONENT_MAX = 1.1  # time ~ rows^k: above this the growth is called superlinear
CHILD_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO_ROOT / "plugins"), os.environ.get("PYTHONPATH", "")) if p
    ),
}


# -- the child: one step (or baseline) per process ------------------------------------------
def child(spec: dict) -> None:
    """Run one step or baseline; write ``{"import_s", "work_s"}`` to ``spec["result"]``."""
    import resource

    started = time.perf_counter()
    workdir, csv = Path(spec["workdir"]), Path(spec["csv"])

    def peak_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    name = spec["name"]
    if name == "read_csv":
        import pandas as pd

        imported, rss_after_import = time.perf_counter(), peak_mb()
        pd.read_csv(csv)
    elif name == "bare_fit":
        import pandas as pd
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        from adclick.schema import FEATURES, TARGET

        train = pd.read_parquet(workdir / "train.parquet")
        x, y = train[list(FEATURES)].to_numpy(), train[TARGET].to_numpy()
        del train
        # loading the arrays is not part of the fit
        imported, rss_after_import = time.perf_counter(), peak_mb()
        LogisticRegression(max_iter=1000).fit(StandardScaler().fit_transform(x), y)
    else:
        from adclick import steps

        imported, rss_after_import = time.perf_counter(), peak_mb()
        if name == "load_data":
            steps.ingest_csv(csv, workdir)
        elif name == "data_preprocessing":
            steps.select_features(workdir)
        elif name == "separate_data_outputs":
            steps.split_holdout(workdir)
        elif name == "build_model":
            steps.fit_and_score(workdir)
        elif name == "load_model":
            steps.register_model(workdir, workdir / "model", min_accuracy=0.5, run_id="bench")
    done = time.perf_counter()
    result = {
        "import_s": imported - started,
        "work_s": done - imported if name != "import" else 0,
        "rss_after_import_mb": rss_after_import,
    }
    Path(spec["result"]).write_text(json.dumps(result))


def run_child(name: str, workdir: Path, csv: Path) -> dict:
    """Wall time, step time and peak RSS of one fresh process running ``name``."""
    result_file = workdir / f".{name}.result.json"
    spec = {"name": name, "workdir": str(workdir), "csv": str(csv), "result": str(result_file)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        env=CHILD_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{name} on {csv.name} exited {proc.returncode}:\n{output.decode()}")
    timings = json.loads(result_file.read_text())
    result_file.unlink()
    return {
        "wall_s": wall,
        "import_s": timings["import_s"],
        "work_s": timings["work_s"],
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "rss_after_import_mb": timings["rss_after_import_mb"],
    }


# -- the parent ------------------------------------------------------------------------------
def generate(rows: int, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "adclick", "generate", "--rows", str(rows), "--out", str(out)],
        env=CHILD_ENV,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def one_pass(rows: int, csv: Path, root: Path, rep: int) -> tuple[dict[str, dict], dict]:
    """Baselines and the five steps in order over a fresh run directory."""
    workdir = root / f"run-{rows}-{rep}"
    workdir.mkdir()
    samples = {"import": run_child("import", workdir, csv)}
    samples["read_csv"] = run_child("read_csv", workdir, csv)
    for step in STEPS:
        samples[step] = run_child(step, workdir, csv)
    samples["bare_fit"] = run_child("bare_fit", workdir, csv)  # needs train.parquet
    sizes = {name: (workdir / name).stat().st_size for name in ARTIFACTS}
    return samples, sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    load_at_start = round(os.getloadavg()[0], 2)
    sizes = sorted(args.rows)
    with tempfile.TemporaryDirectory(prefix="adclick-scale-") as tmp:
        root = Path(tmp)
        csvs, generate_s = {}, {}
        for rows in sizes:
            csvs[rows] = root / f"advertising_{rows}.csv"
            generate_s[rows] = round(generate(rows, csvs[rows]), 3)
            print(f"generated {rows} rows in {generate_s[rows]:.1f} s", flush=True)
        samples: dict[int, dict[str, list[dict]]] = {n: {} for n in sizes}
        files: dict[int, dict[str, int]] = {}
        # Sizes interleaved within each repetition, so machine drift spreads over all of them.
        for rep in range(args.repeats):
            for rows in sizes:
                measured, files[rows] = one_pass(rows, csvs[rows], root, rep)
                for name, sample in measured.items():
                    samples[rows].setdefault(name, []).append(sample)
                total = sum(measured[s]["work_s"] for s in STEPS)
                print(
                    f"pass {rep + 1}/{args.repeats} {rows:>9} rows: steps {total:.2f} s", flush=True
                )
        csv_bytes = {n: csvs[n].stat().st_size for n in sizes}
    report = summarize(samples, files, csv_bytes, generate_s, args.repeats)
    report["load_average_1m_at_start"] = load_at_start
    write_report(report)
    print(json.dumps(report["summary"], indent=2))
    return 0


def _median(samples: list[dict], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def _exponent(t1: float, t2: float, n1: int, n2: int) -> float:
    return math.log(t2 / t1) / math.log(n2 / n1)


def summarize(samples, files, csv_bytes, generate_s, repeats) -> dict:
    sizes = sorted(samples)
    per_size = {}
    for rows in sizes:
        by_name = samples[rows]
        entries = {}
        for name in (*BASELINES, *STEPS):
            work = _median(by_name[name], "work_s")
            rss = max(s["peak_rss_mb"] for s in by_name[name])
            entries[name] = {
                "wall_s": round(_median(by_name[name], "wall_s"), 4),
                "import_s": round(_median(by_name[name], "import_s"), 4),
                "work_s": round(work, 4),
                "us_per_row": round(work / rows * 1e6, 4),
                "peak_rss_mb": round(rss, 1),
                # what the work added to the process's peak, beyond its imports
                "rss_growth_mb": round(
                    max(s["peak_rss_mb"] - s["rss_after_import_mb"] for s in by_name[name]), 1
                ),
            }
        steps_work = sum(entries[s]["work_s"] for s in STEPS)
        steps_wall = sum(entries[s]["wall_s"] for s in STEPS)
        baseline_work = entries["read_csv"]["work_s"] + entries["bare_fit"]["work_s"]
        numeric_mb = rows * 6 * 8 / 2**20  # the six model columns as 8-byte values
        per_size[rows] = {
            "steps": entries,
            "total_work_s": round(steps_work, 3),
            "total_wall_s": round(steps_wall, 3),
            "max_peak_rss_mb": round(max(entries[s]["peak_rss_mb"] for s in STEPS), 1),
            "load_data_over_read_csv": round(
                entries["load_data"]["work_s"] / entries["read_csv"]["work_s"], 3
            ),
            "build_model_over_bare_fit": round(
                entries["build_model"]["work_s"] / entries["bare_fit"]["work_s"], 3
            ),
            "steps_over_read_csv_plus_fit": round(steps_work / baseline_work, 3),
            "numeric_frame_mb": round(numeric_mb, 2),
            "csv_mb": round(csv_bytes[rows] / 2**20, 2),
            "artifact_mb": {k: round(v / 2**20, 3) for k, v in files[rows].items()},
            "generate_s": generate_s[rows],
        }
    growth = {}
    for small, large in itertools.pairwise(sizes):
        key = f"{small}->{large}"
        growth[key] = {}
        for name in (*STEPS, "read_csv", "bare_fit", "total"):
            if name == "total":
                t1, t2 = per_size[small]["total_work_s"], per_size[large]["total_work_s"]
            else:
                t1, t2 = (per_size[n]["steps"][name]["work_s"] for n in (small, large))
            growth[key][name] = {
                "time_ratio": round(t2 / t1, 2),
                "exponent": round(_exponent(t1, t2, small, large), 3),
            }
    largest = sizes[-1]
    top = per_size[largest]
    last_growth = growth[f"{sizes[-2]}->{largest}"] if len(sizes) > 1 else {}
    step_growth = {k: v for k, v in last_growth.items() if k in STEPS}
    worst = max(step_growth.items(), key=lambda kv: kv[1]["exponent"]) if step_growth else None
    summary = {
        "rows": sizes,
        "repeats": repeats,
        "largest_rows": largest,
        "largest_total_work_s": top["total_work_s"],
        "largest_total_wall_s": top["total_wall_s"],
        "largest_max_peak_rss_mb": top["max_peak_rss_mb"],
        "target_total_s": TARGET_TOTAL_S,
        "target_peak_rss_mb": TARGET_RSS_MB,
        "meets_time": top["total_wall_s"] <= TARGET_TOTAL_S,
        "meets_rss": top["max_peak_rss_mb"] <= TARGET_RSS_MB,
        "worst_step_exponent_last_decade": ({"step": worst[0], **worst[1]} if worst else None),
        "meets_linear_growth": bool(worst)
        and all(g["exponent"] <= LINEAR_EXPONENT_MAX for g in step_growth.values()),
    }
    return {"summary": summary, "sizes": per_size, "growth": growth}


# -- output ----------------------------------------------------------------------------------
def write_report(report: dict) -> None:
    sizes = sorted(report["sizes"])
    s = report["summary"]
    at = report["sizes"]

    def row(label: str, cell) -> str:
        return f"| {label} | " + " | ".join(cell(at[n]) for n in sizes) + " |"

    def step_cell(name: str):
        def cell(e: dict) -> str:
            m = e["steps"][name]
            return f"{m['work_s']:.3f} s / {m['wall_s']:.2f} s / {m['peak_rss_mb']:.0f} MB"

        return cell

    head = "| step | " + " | ".join(f"{n:,} rows" for n in sizes) + " |"
    rule = "| --- |" + " --- |" * len(sizes)
    worst = s["worst_step_exponent_last_decade"]
    largest = at[sizes[-1]]
    files = ", ".join(f"{k} {v:.1f}" for k, v in largest["artifact_mb"].items())
    lines = [
        "# Scale: pipeline steps on generated data, one fresh process per step",
        "",
        "`.venv/bin/python bench/scale.py` — CSVs from `python -m adclick generate`; each step",
        "runs `adclick.steps.<step>` in its own process (as an Airflow task does), over a fresh",
        f"run directory; medians of {s['repeats']} passes (peak RSS: the maximum). Cells are",
        "**step time / process wall time / peak RSS**: step time is the step call alone, wall",
        "time adds interpreter start and imports (the `import` baseline is that fixed cost).",
        "",
        head,
        rule,
        *(row(name, step_cell(name)) for name in STEPS),
        row(
            "**all five steps**",
            lambda e: (
                f"**{e['total_work_s']:.2f} s / {e['total_wall_s']:.2f} s / "
                f"{e['max_peak_rss_mb']:.0f} MB**"
            ),
        ),
        *(row(f"*{name}* (baseline)", step_cell(name)) for name in BASELINES),
        "",
        "Against the baselines measured in the same run:",
        "",
        head.replace("| step |", "| ratio |"),
        rule,
        row("load_data / read_csv", lambda e: f"{e['load_data_over_read_csv']:.2f}"),
        row("build_model / bare_fit", lambda e: f"{e['build_model_over_bare_fit']:.2f}"),
        row(
            "five steps / (read_csv + bare_fit)",
            lambda e: f"{e['steps_over_read_csv_plus_fit']:.2f}",
        ),
        *(
            row(
                f"peak RSS growth beyond imports, {name} (MB)",
                lambda e, name=name: f"{e['steps'][name]['rss_growth_mb']:.0f}",
            )
            for name in (*STEPS, "read_csv", "bare_fit")
        ),
        row("CSV size (MB)", lambda e: f"{e['csv_mb']:.1f}"),
        row("model columns as 8-byte values (MB)", lambda e: f"{e['numeric_frame_mb']:.1f}"),
        "",
        "Growth of step time between sizes (x ratio; k: exponent of time ~ rows^k; 1.0 is",
        "linear, a fixed cost pulls it below 1):",
        "",
        "| step | " + " | ".join(report["growth"]) + " |",
        "| --- |" + " --- |" * len(report["growth"]),
        *(
            f"| {name} | "
            + " | ".join(
                f"x{g[name]['time_ratio']:.2f} (k={g[name]['exponent']:.2f})"
                for g in report["growth"].values()
            )
            + " |"
            for name in (*STEPS, "total", "read_csv", "bare_fit")
        ),
        "",
        f"Files between steps at {sizes[-1]:,} rows (MB): {files} (CSV {largest['csv_mb']:.1f}).",
        "",
        f"| target ({sizes[-1]:,} rows) | measured | met |",
        "| --- | --- | --- |",
        f"| compute end to end <= {s['target_total_s']:.0f} s "
        f"| {s['largest_total_work_s']:.2f} s in the steps, {s['largest_total_wall_s']:.2f} s "
        f"with the 5 process starts | {_yes(s['meets_time'])} |",
        f"| peak RSS <= {s['target_peak_rss_mb']:.0f} MB in any step "
        f"| {s['largest_max_peak_rss_mb']:.0f} MB | {_yes(s['meets_rss'])} |",
        f"| near-linear growth (k <= {LINEAR_EXPONENT_MAX} for every step, last decade) "
        f"| worst: {worst['step']} k={worst['exponent']:.2f} | {_yes(s['meets_linear_growth'])} |",
        "",
        f"Load average at start {report['load_average_1m_at_start']} (machine details in "
        "scale.json).",
        "",
        "![time and RSS vs rows](scale.png)",
    ]
    write_results("scale", report, "\n".join(lines))
    plot(report)


def _yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def plot(report: dict) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(report["sizes"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for name in (*STEPS, "read_csv", "bare_fit"):
        style = "--" if name in BASELINES else "-"
        label = name + (" (baseline)" if name in BASELINES else "")
        for axis, figure in ((left, "work_s"), (right, "peak_rss_mb")):
            values = [report["sizes"][n]["steps"][name][figure] for n in sizes]
            axis.plot(sizes, values, style, marker="o", label=label)
    first = report["sizes"][sizes[0]]["total_work_s"]
    left.plot(
        sizes,
        [report["sizes"][n]["total_work_s"] for n in sizes],
        "k-",
        linewidth=2,
        marker="s",
        label="all five steps",
    )
    left.plot(sizes, [first * n / sizes[0] for n in sizes], "k:", label="linear from smallest")
    left.axhline(TARGET_TOTAL_S, color="red", linestyle=":", label="target 60 s")
    right.plot(
        sizes,
        [report["sizes"][n]["steps"]["import"]["peak_rss_mb"] for n in sizes],
        "k:",
        marker="s",
        label="import only (baseline)",
    )
    right.axhline(TARGET_RSS_MB, color="red", linestyle=":", label="target 2 GB")
    for axis, title, unit in (
        (left, "step time (step call only)", "seconds"),
        (right, "peak RSS of the step's process", "MB"),
    ):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("rows")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
        plain = matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}")
        axis.yaxis.set_major_formatter(plain)
        axis.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.legend(fontsize=7)
    right.set_yticks([100, 150, 200, 300, 500, 1000, 2000])
    fig.tight_layout()
    fig.savefig(REPO_ROOT / "bench" / "results" / "scale.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
