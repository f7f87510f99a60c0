"""Two embedded stacks on one machine need every port apart, the log servers' included."""

from __future__ import annotations

import dataclasses

from embedded.__main__ import parse_args, ports_of
from embedded.stack import Ports


def test_every_port_of_the_stack_is_an_option() -> None:
    chosen = {field.name: 20000 + index for index, field in enumerate(dataclasses.fields(Ports))}
    options = {
        "api": "--api-port",
        "flask": "--flask-port",
        "smtp": "--smtp-port",
        "mail_http": "--mail-port",
        "mlflow": "--mlflow-port",
        "worker_logs": "--worker-log-port",
        "trigger_logs": "--trigger-log-port",
        "model_server": "--model-server-port",
    }
    assert set(options) == set(chosen), "a port of the stack has no option"
    argv = [word for name, option in options.items() for word in (option, str(chosen[name]))]
    assert dataclasses.asdict(ports_of(parse_args(argv))) == chosen
