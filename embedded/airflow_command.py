"""``python -m embedded.airflow_command ARGS``: the ``airflow`` command, with the log servers
that the scheduler and the triggerer start bound to 127.0.0.1.

Airflow binds them to every interface and has no setting for it. In the embedded stack the
api-server reads task logs from the same machine, so nothing beyond it needs to reach them.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from airflow.__main__ import main
from airflow.utils.serve_logs import core

LOOPBACK = "127.0.0.1"


class _LoopbackUvicorn:
    """Takes uvicorn's place inside Airflow's log server: the same server, on loopback only."""

    @staticmethod
    def run(app: Any, **options: Any) -> None:
        uvicorn.run(app, **{**options, "host": LOOPBACK})


core.uvicorn = _LoopbackUvicorn  # the log server runs in a process forked from this one

if __name__ == "__main__":
    sys.exit(main())
