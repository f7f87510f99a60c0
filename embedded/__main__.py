"""Run the whole stack on this machine without Docker, train once, and stay up until Ctrl-C.

python -m embedded [--model NAME] [--conf JSON]
                   [--api-port 8080] [--flask-port 5000] [--smtp-port 1025] [--mail-port 8025]
                   [--mlflow-port 5001] [--model-server-port 5002]
                   [--worker-log-port 8793] [--trigger-log-port 8794]
                   [--home DIR] [--model-dir DIR] [--start-timeout 120] [--exit-after-run]

``--model`` names a module of ``dags/models/`` (default: the ad-click model); its training
DAG is triggered once with ``--conf`` as the trigger conf (default: its params' defaults).

Ctrl-C, SIGTERM or SIGHUP (the terminal closed) stop every process within seconds, whatever
the stack is doing: starting, training, or running.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from pathlib import Path

from adclick import contract
from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR_DAG
from adclick_airflow.settings import RESULT_TASK_ID, SETTLED_RESULT_TASK_ID
from embedded.progress import failure_of, wait_with_progress
from embedded.stack import REPO_ROOT, STOP_SIGNALS, EmbeddedStack, Ports

RUN_TIMEOUT_S = 600.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m embedded", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default=contract.DEFAULT_MODEL,
        help="the model module of dags/models/ to train (default: %(default)s)",
    )
    parser.add_argument(
        "--conf",
        type=_conf,
        default={},
        help='trigger conf as a JSON object, e.g. \'{"data_path": "iris.csv"}\'',
    )
    parser.add_argument("--home", type=Path, default=REPO_ROOT / ".local" / "airflow")
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "model")
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=120.0,
        help="seconds the components get to come up (a busy machine may need more)",
    )
    ports = Ports()
    parser.add_argument("--api-port", type=int, default=ports.api)
    parser.add_argument("--flask-port", type=int, default=ports.flask)
    parser.add_argument("--smtp-port", type=int, default=ports.smtp)
    parser.add_argument("--mail-port", type=int, default=ports.mail_http)
    parser.add_argument("--mlflow-port", type=int, default=ports.mlflow)
    # Two stacks on one machine each need their own log servers' ports too.
    parser.add_argument("--worker-log-port", type=int, default=ports.worker_logs)
    parser.add_argument("--trigger-log-port", type=int, default=ports.trigger_logs)
    parser.add_argument("--model-server-port", type=int, default=ports.model_server)
    parser.add_argument(
        "--exit-after-run", action="store_true", help="stop everything after the summary"
    )
    return parser.parse_args(argv)


def ports_of(args: argparse.Namespace) -> Ports:
    """The ports the command line chose, each server's own."""
    return Ports(
        args.api_port,
        args.flask_port,
        args.smtp_port,
        args.mail_port,
        mlflow=args.mlflow_port,
        worker_logs=args.worker_log_port,
        trigger_logs=args.trigger_log_port,
        model_server=args.model_server_port,
    )


def _conf(text: str) -> dict:
    """An argparse type: a trigger conf, a JSON object."""
    try:
        conf = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(conf, dict):
        raise argparse.ArgumentTypeError(f"a trigger conf is a JSON object, got {text!r}")
    return conf


def training_dag_id(stack: EmbeddedStack, model: str) -> str:
    """The training DAG of ``model``, a module of the stack's models folder (checked here, so
    a typo or a broken module is named before anything starts)."""
    return contract.load_named(model, stack.models).dag_id


def train_once(
    stack: EmbeddedStack, model: str = contract.DEFAULT_MODEL, conf: dict | None = None
) -> dict:
    """Trigger ``model``'s training DAG through REST API v2 with ``conf`` and wait for it and
    the monitor it starts."""
    client = stack.client("admin")
    dag_id = training_dag_id(stack, model)
    stack.wait_for_dags((dag_id, MONITOR_DAG))
    for paused in (dag_id, MONITOR_DAG):
        client.set_paused(paused, False)
    run = client.trigger(dag_id, conf or {})
    print(f"Triggered {dag_id} run {run['dag_run_id']}; waiting for it to finish...")
    run = wait_with_progress(client, dag_id, run["dag_run_id"], timeout=RUN_TIMEOUT_S)
    # A run that succeeded has its final result (an approval's answer included) at the end.
    final = SETTLED_RESULT_TASK_ID if run["state"] == "success" else RESULT_TASK_ID
    result = client.xcom(dag_id, run["dag_run_id"], final) or {}
    failure = failure_of(client, dag_id, run["dag_run_id"])
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
    """What ran and where everything is; the monitor line only when a monitor run was seen.

    No password: a summary ends up in terminal captures and logs. It says where they are."""
    run, result = outcome["run"], outcome["result"]
    metrics = result.get("metrics") or {}
    metric = (result.get("gate") or {}).get("metric", "accuracy")
    value = metrics.get(metric)
    monitor = outcome["monitor"]
    lines = [
        "",
        "=" * 72,
        f"Training run   {run['dag_run_id']}: {run['state'].upper()}",
        *failure_lines(outcome.get("failure")),
        f"{metric.capitalize():<15}{'-' if value is None else f'{value:.4f}'}",
        f"Model          version {result.get('version', '-')} "
        f"({'promoted to current' if result.get('promoted') else 'not promoted'})",
        f"Model file     {result.get('model_path', '-')}",
        *mlflow_lines(result.get("mlflow")),
        f"Monitor run    {monitor['dag_run_id']}: {monitor['state']}" if monitor else None,
        f"Mail           {stack.mail_url} (also saved as .eml files in {stack.mail_dir})",
        "",
        f"Airflow UI     {stack.api_url}  login {stack.admin.username}",
        f"Read-only      login {stack.viewer.username} (used by the monitor)",
        f"Approver       login {stack.approver.username} (answers approvals)",
        f"Passwords      in {stack.secrets_path} (readable by you alone)",
        f"Flask monitor  {stack.flask_url}/api  ({stack.flask_url}/health, /api/status, /metrics)",
        f"MLflow UI      {stack.mlflow_url}  (runs, models, the champion alias)",
        f"Model server   {stack.model_server_url}/models/<name>/predict  (/health, /version)",
        f"MLflow logins  in {stack.mlflow_server.accounts_file} (reader: read-only)",
        f"Logs           {stack.log_dir}",
        "=" * 72,
    ]
    return "\n".join(line for line in lines if line is not None)


class StopRequested(BaseException):
    """Ctrl-C, SIGTERM or SIGHUP arrived: stop everything, wherever start-up or the run is.

    A BaseException, like KeyboardInterrupt: the waits that retry on errors must not catch it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_on_signals() -> None:
    """Ctrl-C, `kill` from a supervisor and a closed terminal (SIGHUP) interrupt whatever the
    main thread waits for. Signals after the first are ignored: the stop is on its way."""

    def interrupt(signum: int, _frame: object) -> None:
        for other in STOP_SIGNALS:
            signal.signal(other, signal.SIG_IGN)
        raise StopRequested(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, interrupt)


def run(stack: EmbeddedStack, args: argparse.Namespace) -> int:
    print(f"Starting the embedded stack in {stack.home} (logs in {stack.log_dir})...", flush=True)
    stack.start(args.start_timeout)
    outcome = train_once(stack, args.model, args.conf)
    print(summary(stack, outcome), flush=True)
    if args.exit_after_run:
        return 0 if outcome["run"]["state"] == "success" else 1
    print("Running. Press Ctrl-C to stop every process.", flush=True)
    while True:
        time.sleep(3600)


def mlflow_lines(tracked: dict | None) -> list[str]:
    """The run's MLflow run and the model version it registered."""
    if not tracked:
        return []
    champion = " (champion)" if tracked.get("passed") else ""
    return [
        f"MLflow run     {tracked.get('run_url') or tracked.get('run_id')}",
        f"MLflow model   {tracked.get('model_name')} version {tracked.get('model_version')}"
        f"{champion}",
    ]


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
    try:
        contract.load_named(args.model, REPO_ROOT / "dags" / contract.MODELS_DIR)
    except contract.ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stack = EmbeddedStack(home=args.home, ports=ports_of(args), model_dir=args.model_dir)
    stop_on_signals()
    try:
        return run(stack, args)
    except StopRequested as stop:
        say(f"\n{stop} received.")
        return 128 + stop.signum
    finally:
        for signum in STOP_SIGNALS:  # nothing interrupts the stop itself
            signal.signal(signum, signal.SIG_IGN)
        say("Stopping...")
        stack.stop()
        say("Stopped.")


def say(line: str) -> None:
    """Print on the way out: after SIGHUP the terminal is gone, and the stop must go on."""
    with contextlib.suppress(OSError):
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
