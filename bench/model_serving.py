"""Online predictions: the model service against ``mlflow models serve`` (from .venv-mlflow) on
the same champion, one worker each, wrk on ``POST /invocations``.

    .venv/bin/python bench/model_serving.py [--duration 10] [--rounds 3] [--results DIR]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import harness
import pandas as pd
import requests
from harness import Report, Target, Wrk, cell, table

from adclick.defaults import MLFLOW_NO_TELEMETRY
from embedded.stack import REPO_ROOT
from testkit import fixture_models
from testkit.model_server import model_root, running, served
from testkit.ports import free_port

NAME, MODEL, ROWS, CONNECTIONS = "model_server", "iris", (1, 100), 16
RPS_RATIO_TARGET, P99_RATIO_TARGET = 2.0, 0.5
MLFLOW_BIN = REPO_ROOT / ".venv-mlflow" / "bin"
MLFLOW_ENV = {"PATH": f"{MLFLOW_BIN}{os.pathsep}{os.environ['PATH']}", **MLFLOW_NO_TELEMETRY}
# The registry's current model file saved as an MLflow model, its signature from sample rows.
SAVE_MLFLOW_MODEL = """
import sys, joblib, pandas as pd, mlflow.sklearn
from mlflow.models import infer_signature
model = joblib.load(sys.argv[1])
sample = pd.read_csv(sys.argv[2])
signature = infer_signature(sample, model.predict(sample))
# MLflow saves with skops, which trusts only the types it is told to: the trees, made here.
trusted = ["sklearn.tree._tree.Tree"]
mlflow.sklearn.save_model(model, sys.argv[3], signature=signature, skops_trusted_types=trusted)
"""


def body(frame: pd.DataFrame, rows: int) -> bytes:
    split = frame.sample(rows, replace=rows > len(frame), random_state=rows).to_dict(orient="split")
    return json.dumps({"dataframe_split": {k: split[k] for k in ("columns", "data")}}).encode()


def measure(duration: float, rounds: int) -> dict[str, list[dict]]:
    """wrk's figures per server and body size, the servers in turn, each after a warm-up."""
    wrk = Wrk(threads=2, connections=CONNECTIONS, duration=duration)
    with tempfile.TemporaryDirectory(prefix="bench-model-server-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        (folder / "data").mkdir()
        data = fixture_models.export_all(folder / "data")
        root = model_root(folder, data, (MODEL,))
        features = pd.read_csv(data / f"{MODEL}.csv").drop(columns=["species"])
        features.head(20).to_csv(folder / "sample.csv", index=False)
        model = root / MODEL / json.loads((root / MODEL / "current.json").read_text())["model"]
        saved = folder / "mlflow"
        save = [MLFLOW_BIN / "python", "-c", SAVE_MLFLOW_MODEL, model, folder / "sample.csv", saved]
        subprocess.run(list(map(str, save)), check=True, env=os.environ | MLFLOW_ENV, timeout=900)
        port = free_port()
        serve = f"models serve --env-manager local -h 127.0.0.1 -p {port} -w 1 -m"
        theirs, log = f"http://127.0.0.1:{port}", folder / "mlflow.log"
        command = [str(MLFLOW_BIN / "mlflow"), *serve.split(), str(saved)]
        stack.enter_context(running(command, os.environ | MLFLOW_ENV, log, f"{theirs}/ping"))
        log = folder / "model-server.log"
        ours = stack.enter_context(served(root, folder / "models", log, WORKERS="1"))
        urls = {
            "model-server": f"{ours}/models/{MODEL}/invocations",
            "mlflow": f"{theirs}/invocations",
        }
        bodies = {rows: body(features, rows) for rows in ROWS}
        for rows, payload in bodies.items():  # both answer the same, before any load
            post = partial(
                requests.post,
                data=payload,
                timeout=30,
                headers={"Content-Type": "application/json"},
            )
            answers = [post(url).json() for url in urls.values()]
            assert answers[0] == answers[1], (rows, answers)
        samples: dict[str, list[dict]] = {}
        for _ in range(rounds):
            for rows, payload in bodies.items():
                for server, url in urls.items():
                    wrk.run(url, min(duration, 3.0), post=payload)  # warm-up
                    samples.setdefault(f"{server}/{rows}", []).append(wrk.run(url, post=payload))
    return samples


def summarise(samples: dict[str, list[dict]]) -> dict:
    """Medians over the rounds per server and body size; the ratios, taken round by round."""
    median = lambda values: round(statistics.median(values), 2)  # noqa: E731
    servers = {
        key: {k: median(r[k] for r in runs) for k in ("requests_per_s", "p50_ms", "p99_ms")}
        | {"errors": sum(r["errors"] for r in runs), "rounds": len(runs)}
        for key, runs in samples.items()
    }
    pairs = {
        n: list(zip(samples[f"model-server/{n}"], samples[f"mlflow/{n}"], strict=True))
        for n in ROWS
    }
    ratios = {
        str(n): {
            name: median(a[k] / b[k] for a, b in pairs[n])
            for name, k in (("requests_per_s", "requests_per_s"), ("p99", "p99_ms"))
        }
        for n in ROWS
    }
    return {"connections": CONNECTIONS, "rows": list(ROWS), "servers": servers, "ratios": ratios}


def report(figures: dict) -> Report:
    targets = []
    for n in figures["rows"]:
        rps, p99 = (figures["ratios"][str(n)][k] for k in ("requests_per_s", "p99"))
        rps_goal = f"{n}-row requests: >= {RPS_RATIO_TARGET:g}x MLflow's req/s"
        p99_goal = f"{n}-row requests: p99 <= {P99_RATIO_TARGET:g}x MLflow's"
        targets.append(Target(rps_goal, f"{rps:.2f}x", rps >= RPS_RATIO_TARGET))
        targets.append(Target(p99_goal, f"{p99:.2f}x", p99 <= P99_RATIO_TARGET))
    by_rows = sorted(
        (int(k.split("/")[1]), *k.split("/"), v) for k, v in figures["servers"].items()
    )
    rows = [
        (server, n, cell(v["requests_per_s"], 0), cell(v["p50_ms"]), cell(v["p99_ms"]), v["errors"])
        for _, server, n, v in by_rows
    ]
    method = (
        "Both serve the iris fixture's champion (the same bytes), one worker process each; wrk "
        f"({CONNECTIONS} connections, pinned to one CPU) on `dataframe_split` bodies of "
        f"{' and '.join(map(str, figures['rows']))} rows, the servers in turn after a warm-up; "
        "medians of the rounds, ratios taken round by round."
    )
    sections = [table(("server", "rows per request", "req/s", "p50 ms", "p99 ms", "errors"), rows)]
    title = "Online predictions: model service vs mlflow models serve"
    return Report(NAME, title, method, targets, sections, figures)


def main() -> int:
    parser = harness.Arguments(__doc__, {NAME: report})
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    harness.publish(report(summarise(measure(args.duration, args.rounds))), args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
