"""Every library the code imports is declared where that code runs: the embedded stack and the
Airflow packages in the Airflow lock, the test helpers by name in a requirements file."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from embedded.stack import REPO_ROOT

FIRST_PARTY = {p.name for p in (REPO_ROOT / "plugins").iterdir() if p.is_dir()} | {
    "monitor",
    "model_server",
    "embedded",
    "testkit",
    "tests",
    "_typeshed",  # the type checker's own, imported for annotations only
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - FIRST_PARTY - set(sys.stdlib_module_names)


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    owners = packages_distributions()
    return {module: {_normal(d) for d in owners.get(module, [])} for module in modules}


def _pinned(lock: str) -> set[str]:
    text = (REPO_ROOT / "requirements" / lock).read_text(encoding="utf-8")
    return {_normal(m) for m in re.findall(r"^([A-Za-z0-9_.-]+)==", text, re.MULTILINE)}


def _named(requirements: str) -> set[str]:
    text = (REPO_ROOT / "requirements" / requirements).read_text(encoding="utf-8")
    return {_normal(m) for m in re.findall(r"^([A-Za-z0-9_.-]+)", text, re.MULTILINE)}


def test_the_stack_imports_only_what_the_airflow_lock_installs() -> None:
    pinned = _pinned("airflow.lock")
    for folder in ("plugins", "embedded", "dags"):
        for module, owners in _distributions(_imported(REPO_ROOT / folder)).items():
            assert owners & pinned, f"{folder}/ imports {module}, which airflow.lock lacks"


def test_the_test_helpers_name_what_they_import() -> None:
    named = _named("airflow.in") | _named("dev.in")
    modules = _imported(REPO_ROOT / "testkit")
    missing = {m: owners for m, owners in _distributions(modules).items() if not owners & named}
    assert missing == {}, "testkit/ imports these without a requirements/*.in naming them"
