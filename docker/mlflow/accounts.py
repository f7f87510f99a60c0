"""MLflow's own login (its ``basic-auth`` app) for the stack's tracking server: the settings
file MLflow reads and the accounts the stack gives out.

Every request but ``/health`` and MLflow's public server-info needs a login; anonymous gets
401 and a browser a login prompt. Every account may read everything (``default_permission``
READ) and change only what it created or was granted: the tasks' writer creates the stack's
experiment and registered model, so read-only accounts (the monitor, model consumers) cannot
touch them. MLflow creates its admin itself, on its first start, from
``MLFLOW_AUTH_ADMIN_PASSWORD``; the other accounts are created, or their passwords set, here
on every start, so a changed password takes effect.

Used by ``serve.py`` (the image and the embedded stack) before MLflow starts.
"""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path

# MLflow's own variable: where its basic-auth app reads its settings.
CONFIG_ENV = "MLFLOW_AUTH_CONFIG_PATH"
# The accounts' database (a SQLAlchemy URI); set, it turns the login on.
DATABASE_ENV = "ADCLICK_MLFLOW_AUTH_DB"
# A JSON file {username: password} of the accounts besides the admin.
USERS_ENV = "ADCLICK_MLFLOW_USERS"
ADMIN_USERNAME = "admin"
DEFAULT_PERMISSION = "READ"
APP_NAME = "basic-auth"


def write_config(path: Path, database_uri: str) -> None:
    """MLflow's basic-auth settings, readable by their owner alone (the URI may hold a password)."""
    config = configparser.ConfigParser()
    config["mlflow"] = {
        "default_permission": DEFAULT_PERMISSION,
        "database_uri": database_uri,
        "admin_username": ADMIN_USERNAME,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        config.write(handle)
    os.replace(tmp, path)


def ensure_users(database_uri: str, users: dict[str, str]) -> None:
    """Create each account (no admin rights) or set its password to the one given."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(database_uri)
    for username, password in users.items():
        if username == ADMIN_USERNAME:
            raise ValueError(f"{USERS_ENV}: {ADMIN_USERNAME} is MLflow's own admin account")
        if store.has_user(username):
            store.update_user(username, password=password)
        else:
            store.create_user(username, password)


def prepare_from_env(environ: dict[str, str]) -> list[str]:
    """With the login configured in ``environ``: settings written, accounts made, and the
    ``mlflow server`` options that turn it on; without: nothing done, no options."""
    database_uri = environ.get(DATABASE_ENV)
    if not database_uri:
        return []
    missing = [name for name in (CONFIG_ENV, USERS_ENV) if not environ.get(name)]
    if missing:
        raise SystemExit(f"{DATABASE_ENV} is set, so {' and '.join(missing)} must be too")
    write_config(Path(environ[CONFIG_ENV]), database_uri)
    ensure_users(database_uri, json.loads(Path(environ[USERS_ENV]).read_text()))
    return ["--app-name", APP_NAME]
