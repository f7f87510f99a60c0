"""The embedded stack's secrets: created readable by their owner only, from the first byte."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from embedded.stack import load_or_create_secrets, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The most permissive umask, and no chmod allowed: modes must come from the creation."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"chmod after creation: {args}")

    monkeypatch.setattr(os, "chmod", refuse)
    monkeypatch.setattr(Path, "chmod", refuse)
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_a_fresh_home_and_its_secrets_are_private_from_the_start(
    tmp_path: Path, open_umask: None
) -> None:
    home = tmp_path / "nested" / "home"
    values = load_or_create_secrets(home)
    assert mode(home) == 0o700
    assert mode(home / "secrets.json") == 0o600
    assert json.loads((home / "secrets.json").read_text()) == values
    assert load_or_create_secrets(home) == values


def test_rewriting_a_file_made_world_readable_makes_it_private(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "passwords.json"
    path.write_text("{}")
    assert mode(path) == 0o666
    write_private(path, '{"admin": "x"}')
    assert mode(path) == 0o600
    assert path.read_text() == '{"admin": "x"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwords.json"]


def test_an_existing_wide_open_home_is_closed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    load_or_create_secrets(home)
    assert mode(home) == 0o700


def test_a_home_made_before_the_approver_account_gets_its_password_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    values = load_or_create_secrets(home)
    older = {k: v for k, v in values.items() if k != "approver_password"}
    write_private(home / "secrets.json", json.dumps(older))

    again = load_or_create_secrets(home)

    assert {k: again[k] for k in older} == older
    assert len(again["approver_password"]) >= 16
    assert json.loads((home / "secrets.json").read_text()) == again
    assert mode(home / "secrets.json") == 0o600
