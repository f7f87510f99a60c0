"""secrets-init, the Compose stack's first-start job: every secret generated unless the env
file sets it, kept across starts, refused when guessable, and written only where it is read."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from embedded.stack import REPO_ROOT
from testkit.envfile import SECRET_KEYS

SCRIPT = REPO_ROOT / "docker" / "airflow" / "secrets-init"
VOLUMES = (
    "airflow",
    "worker",
    "auth",
    "postgres",
    "redis",
    "monitor",
    "objectstore",
    "mlflow",
    "signing",
    "model-server",
)
AIRFLOW_UID = 43210
# What an env file may set, and passwords only the stack itself uses.
KEPT_OUTSIDE_AIRFLOWS_VOLUME = (
    "postgres/POSTGRES_SUPERUSER_PASSWORD",
    "mlflow/mlflow-users.json",
    "mlflow/MLFLOW_ADMIN_PASSWORD",
    "mlflow/MLFLOW_SESSION_KEY",
    "monitor/MLFLOW_MONITOR_PASSWORD",
    "model-server/MODEL_SERVER_S3_SECRET_ACCESS_KEY",
)
GENERATED = {*SECRET_KEYS, "REDIS_PASSWORD", "FLOWER_PASSWORD", "MLFLOW_TRACKING_PASSWORD"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for volume in VOLUMES:
        (tmp_path / volume).mkdir()
    return tmp_path


def run(root: Path, **explicit: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "AIRFLOW_UID": str(AIRFLOW_UID), **explicit}
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(root)], env=env, capture_output=True, text=True
    )


def stored(root: Path) -> dict[str, str]:
    values = {path.name: path.read_text() for path in (root / "airflow").iterdir()}
    passwords = json.loads((root / "auth" / "simple_auth_manager_passwords.json").read_text())
    return {
        **values,
        "AIRFLOW_ADMIN_PASSWORD": passwords["admin"],
        "AIRFLOW_APPROVER_PASSWORD": passwords["approver"],
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_first_start_generates_every_secret_and_says_where_the_admin_password_is(
    root: Path,
) -> None:
    result = run(root)
    assert result.returncode == 0, result.stderr
    values = stored(root)
    assert set(values) == GENERATED
    assert all(len(value) >= 24 for value in values.values()), values
    assert len(set(values.values())) == len(values)
    assert len(base64.urlsafe_b64decode(values["AIRFLOW_FERNET_KEY"])) == 32
    for name in GENERATED:
        assert f"generated {name}" in result.stdout
    assert "cat /opt/airflow/auth/simple_auth_manager_passwords.json" in result.stdout
    # Each reader's volume holds what it reads, and nothing else.
    # The database superuser's password: Postgres's volume alone (airflow-init mounts it too).
    superuser = (root / "postgres" / "POSTGRES_SUPERUSER_PASSWORD").read_text()
    assert len(superuser) >= 24 and superuser not in values.values()
    redis_conf = (root / "redis" / "redis.conf").read_text()
    assert redis_conf == f"requirepass {values['REDIS_PASSWORD']}\n"
    monitor = (root / "monitor" / "AIRFLOW_MONITOR_PASSWORD").read_text()
    assert monitor == values["AIRFLOW_MONITOR_PASSWORD"]
    assert [p.name for p in (root / "postgres").iterdir()] == ["POSTGRES_SUPERUSER_PASSWORD"]
    assert [p.name for p in (root / "redis").iterdir()] == ["redis.conf"]
    assert sorted(p.name for p in (root / "monitor").iterdir()) == [
        "AIRFLOW_MONITOR_PASSWORD",
        "MLFLOW_MONITOR_PASSWORD",
    ]
    # MLflow's database password and its S3 keys: its own volume, generated, not among
    # Airflow's; its identity opens its own bucket alone.
    mlflow = root / "mlflow"
    assert sorted(p.name for p in mlflow.iterdir()) == [
        "MLFLOW_ADMIN_PASSWORD",
        "MLFLOW_DB_PASSWORD",
        "MLFLOW_READER_PASSWORD",
        "MLFLOW_S3_ACCESS_KEY_ID",
        "MLFLOW_S3_SECRET_ACCESS_KEY",
        "MLFLOW_SESSION_KEY",
        "aws-credentials",
        "mlflow-users.json",
    ]
    assert len((mlflow / "MLFLOW_DB_PASSWORD").read_text()) >= 24
    # MLflow's logins: the tasks' writer (its password among Airflow's, for the workers), the
    # monitor's and a consumer's read-only ones; its admin's password in its volume alone.
    users = json.loads((mlflow / "mlflow-users.json").read_text())
    assert users == {
        "airflow": values["MLFLOW_TRACKING_PASSWORD"],
        "monitor": (root / "monitor" / "MLFLOW_MONITOR_PASSWORD").read_text(),
        "reader": (mlflow / "MLFLOW_READER_PASSWORD").read_text(),
    }
    admin = (mlflow / "MLFLOW_ADMIN_PASSWORD").read_text()
    assert len({admin, *users.values()}) == 4 and min(map(len, [admin, *users.values()])) >= 24
    assert not {p.name for p in mlflow.iterdir()} & {p.name for p in (root / "airflow").iterdir()}
    key_id = (mlflow / "MLFLOW_S3_ACCESS_KEY_ID").read_text()
    assert f"aws_access_key_id = {key_id}\n" in (mlflow / "aws-credentials").read_text()
    identities = json.loads((root / "objectstore" / "s3.json").read_text())["identities"]
    (own,) = [i for i in identities if i["credentials"][0]["accessKey"] == key_id]
    assert own["actions"] == ["Read:adclick-mlflow", "Write:adclick-mlflow", "List:adclick-mlflow"]
    # The model service's keys: its own volume; its identity reads objects under model/ alone.
    served = root / "model-server"
    key_id = (served / "MODEL_SERVER_S3_ACCESS_KEY_ID").read_text()
    assert f"aws_access_key_id = {key_id}\n" in (served / "aws-credentials").read_text()
    (models,) = [i for i in identities if i["credentials"][0]["accessKey"] == key_id]
    assert models["actions"] == ["Read:adclick/model/*"]
    # The admin's and the approver's passwords go to the passwords file alone, not to every
    # Airflow container.
    kept_apart = {"AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_APPROVER_PASSWORD"}
    assert not kept_apart & {p.name for p in (root / "airflow").iterdir()}
    passwords = json.loads((root / "auth" / "simple_auth_manager_passwords.json").read_text())
    assert passwords["monitor"] == values["AIRFLOW_MONITOR_PASSWORD"]


def test_only_the_airflow_user_can_read_the_airflow_secrets(root: Path) -> None:
    assert run(root).returncode == 0
    airflow = root / "airflow"
    assert mode(airflow) == 0o700
    for path in [*airflow.iterdir(), root / "auth" / "simple_auth_manager_passwords.json"]:
        assert mode(path) & 0o077 == 0, path
    if os.geteuid() == 0:
        assert airflow.stat().st_uid == AIRFLOW_UID
        assert {p.stat().st_uid for p in airflow.iterdir()} == {AIRFLOW_UID}


def test_later_starts_keep_the_secrets(root: Path) -> None:
    assert run(root).returncode == 0
    first = stored(root)
    logins = [(root / path).read_text() for path in KEPT_OUTSIDE_AIRFLOWS_VOLUME]
    result = run(root)
    assert result.returncode == 0, result.stderr
    assert stored(root) == first
    assert [(root / path).read_text() for path in KEPT_OUTSIDE_AIRFLOWS_VOLUME] == logins
    assert "generated" not in result.stdout


def test_values_set_in_the_env_file_win_and_stay(root: Path) -> None:
    assert run(root).returncode == 0
    generated = stored(root)
    explicit = {
        "AIRFLOW_API_SECRET_KEY": "k" * 40,
        "AIRFLOW_ADMIN_PASSWORD": "an-admin-password",
        "POSTGRES_PASSWORD": "a-postgres-password",
    }
    assert run(root, **explicit).returncode == 0
    assert stored(root) == {**generated, **explicit}
    # Unset again: the last values stay (the env file is not the only copy).
    assert run(root).returncode == 0
    assert stored(root) == {**generated, **explicit}


def test_a_new_and_an_old_fernet_key_while_rotating(root: Path) -> None:
    keys = [base64.urlsafe_b64encode(os.urandom(32)).decode() for _ in range(2)]
    assert run(root, AIRFLOW_FERNET_KEY=",".join(keys)).returncode == 0
    assert stored(root)["AIRFLOW_FERNET_KEY"] == ",".join(keys)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("AIRFLOW_FERNET_KEY", "not-a-key", "is not a Fernet key"),
        ("AIRFLOW_FERNET_KEY", base64.urlsafe_b64encode(b"k" * 32).decode() + ",x", "Fernet"),
        ("AIRFLOW_API_SECRET_KEY", "s" * 31, "shorter than 32 characters"),
        ("AIRFLOW_ADMIN_PASSWORD", "admin", "shorter than 12 characters"),
        ("AIRFLOW_API_SECRET_KEY", "local-dev-api-secret-key-not-for-production", "published"),
        ("POSTGRES_PASSWORD", "LocalDevPostgres1234", "published"),
    ],
)
def test_a_guessable_or_malformed_value_is_refused_and_nothing_written(
    root: Path, name: str, value: str, words: str
) -> None:
    result = run(root, **{name: value})
    assert result.returncode == 1
    assert name in result.stderr and words in result.stderr, result.stderr
    assert all(not any((root / volume).iterdir()) for volume in VOLUMES)


def test_the_token_signing_key_is_its_readers_alone_and_no_shared_secret_is_left(
    root: Path,
) -> None:
    """Airflow's API tokens are signed with a private key kept in a volume of its own (the
    api-server's and the scheduler's); the shared JWT secret every container held is gone,
    also from a volume an earlier version wrote it into."""
    (root / "airflow" / "AIRFLOW_JWT_SECRET").write_text("s" * 48)
    assert run(root).returncode == 0
    key_file = root / "signing" / "jwt-private-key.pem"
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert mode(key_file) == 0o400 and mode(root / "signing") == 0o700
    if os.geteuid() == 0:
        assert key_file.stat().st_uid == AIRFLOW_UID
    assert not (root / "airflow" / "AIRFLOW_JWT_SECRET").exists()
    first = key_file.read_bytes()
    assert run(root).returncode == 0
    assert key_file.read_bytes() == first
