"""Online predictions: the model service against ``mlflow models serve`` on the same champion.

Both serve the iris fixture model's champion (the same fitted bytes: the MLflow model is
saved from the registry's model file) on this machine, one worker process each (gunicorn's
gevent worker; MLflow's uvicorn), and get the same load from wrk (16 connections, pinned to
one CPU) on MLflow's scoring protocol, ``POST /invocations`` with a ``dataframe_split`` body
of one row and of 100 rows. The two servers take turns, ``--rounds`` times, after a warm-up;
the figures are the medians of the rounds, and the ratios are taken round by round.

    .venv/bin/python bench/model_serving.py [--duration 10] [--rounds 3] [--results DIR]

MLflow runs from ``.venv-mlflow`` (the full MLflow, ``--env-manager local``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pandas as pd
import requests
from harness import Report, Target, arguments, cell, publish, rebuild, table
from monitor_service import Wrk

from embedded.stack import REPO_ROOT
from testkit import fixture_models
from testkit.debian import ensure_debian_tool
from testkit.model_server import model_root, running, served
from testkit.ports import free_port

NAME = "model_server"
MODEL = "iris"
ROWS = (1, 100)
CONNECTIONS = 16
RPS_RATIO_TARGET, P99_RATIO_TARGET = 2.0, 0.5
MLFLOW_VENV = REPO_ROOT / ".venv-mlflow"
SAVE_MLFLOW_MODEL = """
import sys, joblib, pandas as pd, mlflow.sklearn
from mlflow.models import infer_signature
model = joblib.load(sys.argv[1])
sample = pd.read_csv(sys.argv[2])
signature = infer_signature(sample, model.predict(sample))
# MLflow saves with skops, which trusts only the types it is told to: the trees, made here.
mlflow.sklearn.save_model(
    model, sys.argv[3], signature=signature, skops_trusted_types=["sklearn.tree._tree.Tree"]
)
"""


def body(frame: pd.DataFrame, rows: int) -> bytes:
    sample = frame.sample(rows, replace=rows > len(frame), random_state=rows)
    split = sample.to_dict(orient="split")
    return json.dumps(
        {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}
    ).encode()


def mlflow_model(registry: Path, features: pd.DataFrame, out: Path) -> Path:
    """The registry's current model file saved as an MLflow model (signature from the rows)."""
    current = json.loads((registry / "current.json").read_text())
    sample = out.parent / "sample.csv"
    features.head(20).to_csv(sample, index=False)
    subprocess.run(
        [
            str(MLFLOW_VENV / "bin" / "python"),
            "-c",
            SAVE_MLFLOW_MODEL,
            str(registry / current["model"]),
            str(sample),
            str(out),
        ],
        check=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        timeout=900,
    )
    return out


@contextmanager
def mlflow_served(model: Path, log: Path):
    """``mlflow models serve`` on a free port, one worker; its URL once /ping answers."""
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{MLFLOW_VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    command = [
        str(MLFLOW_VENV / "bin" / "mlflow"),
        "models",
        "serve",
        "-m",
        str(model),
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(command, env, log, f"{url}/ping"):
        yield url


def measure(duration: float, rounds: int) -> dict:
    wrk = Wrk(
        ensure_debian_tool("wrk", "wrk"), threads=2, connections=CONNECTIONS, duration=duration
    )
    with tempfile.TemporaryDirectory(prefix="bench-model-server-") as folder, ExitStack() as stack:
        folder = Path(folder)
        (folder / "data").mkdir()
        data = fixture_models.export_all(folder / "data")
        root = model_root(folder, data, (MODEL,))
        features = pd.read_csv(data / f"{MODEL}.csv").drop(columns=["species"])
        saved = mlflow_model(root / MODEL, features, folder / "mlflow-model")
        ours = stack.enter_context(
            served(root, folder / "models", folder / "model-server.log", WORKERS="1")
        )
        theirs = stack.enter_context(mlflow_served(saved, folder / "mlflow.log"))
        urls = {
            "model-server": f"{ours}/models/{MODEL}/invocations",
            "mlflow": f"{theirs}/invocations",
        }
        bodies = {rows: body(features, rows) for rows in ROWS}
        for rows, payload in bodies.items():  # both answer the same, before any load
            answers = [
                requests.post(
                    url, data=payload, timeout=30, headers={"Content-Type": "application/json"}
                ).json()
                for url in urls.values()
            ]
            assert answers[0] == answers[1], (rows, answers)
        samples: dict[str, list[dict]] = {}
        for _ in range(rounds):
            for rows, payload in bodies.items():
                for server, url in urls.items():
                    wrk.run(url, min(duration, 3.0), post=payload)  # warm-up
                    result = wrk.run(url, post=payload)
                    samples.setdefault(f"{server}/{rows}", []).append(result)
    return summarise(samples)


def summarise(samples: dict[str, list[dict]]) -> dict:
    figures: dict = {"connections": CONNECTIONS, "rows": list(ROWS), "servers": {}, "ratios": {}}
    for key, runs in samples.items():
        figures["servers"][key] = {
            field: round(statistics.median(run[field] for run in runs), 2)
            for field in ("requests_per_s", "p50_ms", "p99_ms")
        } | {"errors": sum(run["errors"] for run in runs), "rounds": len(runs)}
    for rows in ROWS:
        ours, theirs = samples[f"model-server/{rows}"], samples[f"mlflow/{rows}"]
        pairs = list(zip(ours, theirs, strict=True))
        figures["ratios"][str(rows)] = {
            "requests_per_s": round(
                statistics.median(a["requests_per_s"] / b["requests_per_s"] for a, b in pairs), 2
            ),
            "p99": round(statistics.median(a["p99_ms"] / b["p99_ms"] for a, b in pairs), 2),
        }
    return figures


HEADER = ("server", "rows per request", "req/s", "p50 ms", "p99 ms", "errors")


def _by_rows(item: tuple[str, dict]) -> tuple[int, str]:
    server, rows = item[0].split("/")
    return int(rows), server


def report(figures: dict) -> Report:
    ratios, servers = figures["ratios"], figures["servers"]
    targets = []
    for rows in figures["rows"]:
        ratio = ratios[str(rows)]
        targets.append(
            Target(
                f"{rows}-row requests: >= {RPS_RATIO_TARGET:g}x MLflow's req/s",
                f"{ratio['requests_per_s']:.2f}x",
                ratio["requests_per_s"] >= RPS_RATIO_TARGET,
            )
        )
        targets.append(
            Target(
                f"{rows}-row requests: p99 <= {P99_RATIO_TARGET:g}x MLflow's",
                f"{ratio['p99']:.2f}x",
                ratio["p99"] <= P99_RATIO_TARGET,
            )
        )
    rows = [
        (
            key.split("/")[0],
            key.split("/")[1],
            cell(v["requests_per_s"], 0),
            cell(v["p50_ms"]),
            cell(v["p99_ms"]),
            v["errors"],
        )
        for key, v in sorted(servers.items(), key=_by_rows)
    ]
    return Report(
        name=NAME,
        title="Online predictions: model service vs mlflow models serve",
        method=(__doc__ or "").split("\n\n")[1].replace("\n", " "),
        targets=targets,
        sections=[
            table(("server", "rows per request", "req/s", "p50 ms", "p99 ms", "errors"), rows)
        ],
        figures=figures,
    )


def main() -> int:
    parser = arguments(__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.rebuild:
        return rebuild({NAME: report}, args.results)
    publish(report(measure(args.duration, args.rounds)), args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
