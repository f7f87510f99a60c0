"""Run the whole stack on this machine without Docker, train once, and stay up until Ctrl-C.

python -m embedded [--api-port 8080] [--flask-port 5000] [--smtp-port 1025] [--mail-port 8025]
                   [--exit-after-run]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from embedded.progress import failure_of, wait_with_progress
from embedded.stack import REPO_ROOT, EmbeddedStack, Ports

TRAINING_DAG = "ad_click_training"
MONITOR_DAG = "ad_click_monitor"
RUN_TIMEOUT_S = 600.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m embedded", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=REPO_ROOT / ".local" / "airflow")
    parser.add_argument("--api-port", type=int, default=8080)
    parser.add_argument("--flask-port", type=int, default=5000)
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--mail-port", type=int, default=8025)
    parser.add_argument(
        "--exit-after-run", action="store_true", help="stop everything after the summary"
    )
    return parser.parse_args(argv)


def train_once(stack: EmbeddedStack) -> dict:
    """Trigger the training DAG through REST API v2 and wait for it and the monitor it starts."""
    client = stack.client("admin")
    stack.wait_for_dags((TRAINING_DAG, MONITOR_DAG))
    for dag_id in (TRAINING_DAG, MONITOR_DAG):
        client.set_paused(dag_id, False)
    run = client.trigger(TRAINING_DAG)
    print(f"Triggered {TRAINING_DAG} run {run['dag_run_id']}; waiting for it to finish...")
    run = wait_with_progress(client, TRAINING_DAG, run["dag_run_id"], timeout=RUN_TIMEOUT_S)
    result = client.xcom(TRAINING_DAG, run["dag_run_id"], "load_model") or {}
    failure = failure_of(client, TRAINING_DAG, run["dag_run_id"])
    monitor = wait_for_monitor_after(client, run)
    return {"run": run, "result": result, "monitor": monitor, "failure": failure}


def wait_for_monitor_after(client, run: dict, timeout: float = 120.0) -> dict | None:
    """The training run triggers the monitor DAG, which (re)launches the Flask service."""
    if run["state"] != "success":
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = client.latest_run(MONITOR_DAG)
        if latest and (latest.get("conf") or {}).get("source_run_id") == run["dag_run_id"]:
            return client.wait_for_run(MONITOR_DAG, latest["dag_run_id"], timeout=timeout)
        time.sleep(0.5)
    return None


def summary(stack: EmbeddedStack, outcome: dict) -> str:
    run, result = outcome["run"], outcome["result"]
    metrics = result.get("metrics") or {}
    monitor = outcome["monitor"]
    lines = [
        "",
        "=" * 72,
        f"Training run   {run['dag_run_id']}: {run['state'].upper()}",
        *failure_lines(outcome.get("failure")),
        f"Accuracy       {metrics.get('accuracy', float('nan')):.4f}",
        f"Model          version {result.get('version', '-')} "
        f"({'promoted to current' if result.get('promoted') else 'not promoted'})",
        f"Model file     {result.get('model_path', '-')}",
        f"Monitor run    {monitor['dag_run_id']}: {monitor['state']}" if monitor else "",
        f"Mail           {stack.mail_url} (also saved as .eml files in {stack.mail_dir})",
        "",
        f"Airflow UI     {stack.api_url}  login {stack.admin.username} / {stack.admin.password}",
        f"Read-only      {stack.viewer.username} / {stack.viewer.password} (used by the monitor)",
        f"Flask monitor  {stack.flask_url}/api  ({stack.flask_url}/health, /api/status, /metrics)",
        f"Logs           {stack.log_dir}",
        "=" * 72,
    ]
    return "\n".join(line for line in lines if line is not None)


def failure_lines(failure: dict | None) -> list[str]:
    """The failing task and its error, right under the run's state."""
    if failure is None:
        return []
    message = str(failure["message"]).splitlines() or [""]
    return [
        f"Failed task    {failure['task_id']}",
        f"Error          {message[0]}",
        *(f"               {line}" for line in message[1:]),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ports = Ports(args.api_port, args.flask_port, args.smtp_port, args.mail_port)
    stack = EmbeddedStack(home=args.home, ports=ports)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # Ctrl-C, and `kill` from a supervisor
        signal.signal(signum, lambda *_: stop.set())
    print(f"Starting the embedded stack in {stack.home} (logs in {stack.log_dir})...")
    stack.start()
    try:
        outcome = train_once(stack)
        print(summary(stack, outcome), flush=True)
        if args.exit_after_run:
            return 0 if outcome["run"]["state"] == "success" else 1
        print("Running. Press Ctrl-C to stop every process.", flush=True)
        while not stop.wait(1.0):
            pass
        return 0
    finally:
        print("Stopping...", flush=True)
        stack.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
