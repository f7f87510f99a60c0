"""Passwords given in a file: how the Compose stack hands the monitor its generated one."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Config

from airflow_rest.credentials import password_from
from monitor.config import load_config


def test_a_password_set_directly_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file")
    settings = {"PASSWORD": "direct", "PASSWORD_FILE": str(tmp_path / "pw")}
    assert password_from(settings, "PASSWORD") == "direct"


def test_an_empty_password_is_read_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    settings = {"PASSWORD": "", "PASSWORD_FILE": str(tmp_path / "pw")}
    assert password_from(settings, "PASSWORD") == "from-file"
    assert password_from({}, "PASSWORD") == ""


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(ValueError, match=f"MONITOR_PASSWORD_FILE: cannot read {missing}"):
        password_from({"PASSWORD_FILE": str(missing)}, "PASSWORD", "MONITOR_")


def test_the_flask_monitor_reads_its_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("generated-pw")
    config = Config(str(tmp_path))
    load_config(config, {"AIRFLOW_PASSWORD_FILE": str(tmp_path / "pw")})
    assert config["AIRFLOW_PASSWORD"] == "generated-pw"
