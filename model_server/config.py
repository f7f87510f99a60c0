"""Settings of the model service: defaults, overridden by MODEL_SERVER_* environment variables.

Values from the environment are kept as text and only the numeric settings are converted,
with an error naming the variable when they are not numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Config

from adclick_contract import ALERT_EMAILS, MODEL_SERVER_SERVICE

ENV_PREFIX = "MODEL_SERVER"
# The model modules of the repository (dags/models), as the repository and the image lay them out.
DEFAULT_MODELS_DIR = str(Path(__file__).resolve().parents[1] / "dags" / "models")

DEFAULTS: dict[str, Any] = {
    # The model contract's modules: one model served per module.
    "MODELS_DIR": DEFAULT_MODELS_DIR,
    # The registries' root (a folder or an s3:// URL), laid out as the stack's model root: the
    # default model's registry at the root, every other model's under <root>/<name>.
    "MODEL_ROOT": "",
    # Seconds between two looks at each registry's current.json (a promotion is served
    # within this plus the new model's load time).
    "POLL_INTERVAL": 1.0,
    # The largest request body (bytes); a larger one gets 413.
    "MAX_BODY_BYTES": 10 * 1024 * 1024,
    # Host names the service answers (Flask's own setting; any other Host header gets 400:
    # no reading it through DNS rebinding). Comma-separated; a leading dot allows subdomains.
    "TRUSTED_HOSTS": ["127.0.0.1", "localhost", MODEL_SERVER_SERVICE],
    # Where the alert about a champion that cannot be loaded goes. No SMTP host: logged only.
    "SMTP_HOST": "",
    "SMTP_PORT": 25,
    "SMTP_TIMEOUT": 10.0,
    "MAIL_FROM": "model-server@localhost",
    "ALERT_EMAILS": ALERT_EMAILS,
    # Set by the process launcher for each start (adclick_contract.instance).
    "INSTANCE_KEY": "",
}
# gunicorn's settings (gunicorn.conf.py), MODEL_SERVER_<key> in the environment.
GUNICORN_DEFAULTS: dict[str, Any] = {
    "BIND": "0.0.0.0:5002",
    "WORKERS": 1,
    "CONNECTIONS": 1000,
    "LOG_LEVEL": "info",
}
SECONDS = ("POLL_INTERVAL", "SMTP_TIMEOUT")
WHOLE_NUMBERS = ("MAX_BODY_BYTES", "SMTP_PORT")


def load_config(config: Config, test_config: dict[str, Any] | None) -> None:
    """Defaults, then the environment (or ``test_config`` in tests), then type checks."""
    config.from_mapping(DEFAULTS)
    if test_config is None:
        config.from_prefixed_env(ENV_PREFIX, loads=str)
    else:
        config.update(test_config)
    if not str(config["MODEL_ROOT"]).strip():
        raise ValueError(f"{ENV_PREFIX}_MODEL_ROOT must name the model registries' root")
    for key in SECONDS:
        config[key] = _positive(key, config[key], float)
    for key in WHOLE_NUMBERS:
        config[key] = _positive(key, config[key], int)
    config["MAX_CONTENT_LENGTH"] = config["MAX_BODY_BYTES"]  # Flask answers 413 above it
    config["TRUSTED_HOSTS"] = _names("TRUSTED_HOSTS", config["TRUSTED_HOSTS"], "host")
    # Compose passes an unset ADCLICK_ALERT_EMAILS through as empty: the default then.
    recipients = config["ALERT_EMAILS"] or ALERT_EMAILS
    config["ALERT_EMAILS"] = _names("ALERT_EMAILS", recipients, "address")


def _positive(key: str, value: Any, kind: type) -> Any:
    try:
        number = kind(str(value))
    except ValueError:
        number = 0
    if not number > 0:
        raise ValueError(f"{ENV_PREFIX}_{key} must be a number > 0, not {value!r}")
    return number


def _names(key: str, value: Any, what: str) -> list[str]:
    names = value.split(",") if isinstance(value, str) else list(value or ())
    names = [str(name).strip() for name in names if str(name).strip()]
    if not names:
        raise ValueError(f"{ENV_PREFIX}_{key} must name at least one {what}")
    return names
