"""No secret is committed: the committed .env sets none (the stack generates them)."""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

import pytest

from embedded.stack import REPO_ROOT
from testkit.envfile import SECRET_KEYS, read_env_file

PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
# A Fernet key (url-safe base64 of 32 bytes) or a long random token, on its own.
TOKEN = re.compile(rb"(?<![A-Za-z0-9_\-/+])[A-Za-z0-9_\-]{43}=(?![A-Za-z0-9])")


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO_ROOT / name for name in out.decode().split("\0") if name]


def env_values() -> dict[str, str]:
    return read_env_file(REPO_ROOT / ".env")


def test_the_committed_env_file_sets_no_secret() -> None:
    values = env_values()
    for key in SECRET_KEYS:
        assert not values.get(key), f".env sets {key}: a committed secret is a public one"


def test_no_private_key_or_random_token_in_any_tracked_file() -> None:
    for path in tracked_files():
        if not path.is_file():
            continue
        data = path.read_bytes()
        assert not PRIVATE_KEY.search(data), f"a private key in {path}"
        tokens = {m.group(0) for m in TOKEN.finditer(data)}
        assert not tokens, f"secret-looking tokens in {path}: {tokens}"


def test_shared_airflow_config_sets_no_secret() -> None:
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO_ROOT / "config" / "airflow.cfg")
    for section, key in [
        ("core", "fernet_key"),
        ("api", "secret_key"),
        ("api_auth", "jwt_secret"),
        ("database", "sql_alchemy_conn"),
        ("celery", "broker_url"),
        ("celery", "result_backend"),
    ]:
        assert not config.has_option(section, key), f"config/airflow.cfg sets [{section}] {key}"


def test_generated_secrets_and_env_files_stay_out_of_git() -> None:
    ignored = (REPO_ROOT / ".gitignore").read_text().split()
    assert ".local/" in ignored  # the embedded stack's generated secrets.json
    for path in (".env.production", ".local/airflow/secrets.json"):
        checked = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO_ROOT)
        assert checked.returncode == 0, f"{path} must be git-ignored"
