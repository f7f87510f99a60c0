"""``mlflow server`` that becomes its web server instead of waiting for it.

MLflow's command line prepares the stores, then starts uvicorn as a child and waits for it,
holding every module it imported: about 200 MB that serve no request. Here the same command
line runs unchanged (same options, same checks, same environment for the workers), except
that its last step replaces this process with the server (``exec``), so one process is left.

Used by the Compose image and by the embedded stack: ``python serve.py [server options]``.
With ``ADCLICK_MLFLOW_AUTH_DB`` set, MLflow's login is turned on first (``accounts.py``);
request bodies are capped (``upload_limit.py``).
The job runner is the one thing ``mlflow server`` starts beside the web server; it must be
off (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``), since nothing would be left to start it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from upload_limit import APP_ENV, FACTORY_ENV  # beside this file, in the image too

HERE = Path(__file__).resolve().parent

JOB_EXECUTION = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"


def exec_server(command: Sequence[str], extra_env: dict[str, str] | None = None, **_: object):
    """Stands in for MLflow's ``_exec_cmd`` at the one place the server calls it; uvicorn
    serves MLflow's app behind the upload cap (``upload_limit.py``)."""
    *options, app = command
    if options[1:3] != ["-m", "uvicorn"]:
        sys.exit(f"serve.py runs MLflow under uvicorn only, not: {' '.join(command)}")
    factory = "--factory" in options
    argv = [*options, *([] if factory else ["--factory"]), "--app-dir", str(HERE)]
    env = {**os.environ, **(extra_env or {}), APP_ENV: app, FACTORY_ENV: "1" if factory else ""}
    os.execve(argv[0], [*argv, "upload_limit:create_app"], env)


def main(argv: Sequence[str]) -> int:
    if os.environ.get(JOB_EXECUTION, "").lower() not in {"false", "0"}:
        sys.exit(f"{JOB_EXECUTION}=false is required: the job runner would never be started")
    import mlflow.server
    from accounts import prepare_from_env
    from mlflow.cli import cli

    if not hasattr(mlflow.server, "_exec_cmd"):
        sys.exit("this MLflow version starts its server differently: run `mlflow server`")
    mlflow.server._exec_cmd = exec_server
    login = prepare_from_env(dict(os.environ))
    return cli.main(["server", *argv, *login], prog_name="mlflow")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
