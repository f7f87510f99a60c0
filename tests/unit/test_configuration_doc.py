"""docs/configuration.md is written from the declared settings, and Compose restates none of
their defaults."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from adclick_airflow import environment

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("docker-compose.yaml", "docker-compose.worker.yaml")


def test_the_page_is_current() -> None:
    page = (REPO_ROOT / environment.PAGE).read_text(encoding="utf-8")
    assert page == environment.page(), f"docs/configuration.md is stale: {environment.COMMAND}"


def test_the_check_names_a_stale_page(tmp_path: Path, capsys) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text("# Configuration\n", encoding="utf-8")
    assert environment.main([str(stale), "--check"]) == 1
    assert environment.COMMAND in capsys.readouterr().out
    assert environment.main([str(stale)]) == 0
    assert environment.main([str(stale), "--check"]) == 0


def test_each_variable_is_declared_once() -> None:
    names = [v.name for v in environment.VARIABLES + tuple(environment.launcher_variables())]
    names += [v.name for v in environment.monitor_variables()]
    assert len(names) == len(set(names))


def _passed_values() -> dict[str, list[str]]:
    """Each variable Compose sets from the host's environment, with the default it gives."""
    found: dict[str, list[str]] = {}
    for name in COMPOSE_FILES:
        text = (REPO_ROOT / name).read_text(encoding="utf-8")
        yaml.safe_load(text)  # still a valid file
        for variable, default in re.findall(r"\$\{(\w+):-([^}]*)\}", text):
            found.setdefault(variable, []).append(default)
    return found


def test_compose_restates_no_default() -> None:
    declared = {v.name: str(v.default) for v in environment.VARIABLES if v.default is not None}
    restated = {
        name: defaults
        for name, defaults in _passed_values().items()
        if name in declared and declared[name] in defaults
    }
    assert restated == {}, "Compose passes these through with a default of its own"
