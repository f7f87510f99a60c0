"""The documentation names only what exists: every page README.md, SECURITY.md and docs/*.md
link, and every repository path, command, Flask monitor route and environment variable they
name (in inline code and code blocks) is in the tree, the code, the Compose files or the
scripts."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest
import yaml
from flask import Flask
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import MapAdapter, RequestRedirect

import model_server.metrics
import model_server.views
from adclick import cli as adclick_cli
from embedded import __main__ as embedded_main
from embedded.stack import REPO_ROOT
from model_server.config import DEFAULTS as MODEL_SERVER_DEFAULTS
from model_server.config import ENV_PREFIX as MODEL_SERVER_ENV_PREFIX
from model_server.config import GUNICORN_DEFAULTS as MODEL_SERVER_GUNICORN_DEFAULTS
from monitor import create_app
from monitor.config import DEFAULTS as MONITOR_DEFAULTS
from monitor.config import ENV_PREFIX as MONITOR_ENV_PREFIX
from testkit.docs import documentation_pages

README_MAX_BYTES = 8 * 1024

# Named by the docs and delivered by work not landed yet: each is checked like the rest once
# it exists, and reported as skipped, with its reason, while it does not.
PENDING_PATHS: dict[str, str] = {}
PENDING_COMMANDS: dict[str, str] = {}
# Files the docs tell the reader to make (examples), not files of the repository.
EXAMPLE_FILES = {
    "data/advertising_real.csv",
    "data/x.csv",
    "data/churn.csv",
    "dags/models/churn.py",
    "dags/models/tumours.py",
}
# Paths of other programs' URL spaces and of containers' file systems, not the monitor's.
NOT_MONITOR_ROUTES = (
    *("/opt/", "/dev/", "/var/", "/path/"),  # containers' and example file systems
    *("/api/v2/", "/auth/", "/execution/"),  # Airflow's
    "/containers/",  # the Docker engine's
)
MAIL_CATCHER_ROUTES = ("/api/v1/", "/view/")
VARIABLE = re.compile(r"(?<![\w$-])[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO_ROOT))


PAGES = documentation_pages()
pages = pytest.mark.parametrize("page", PAGES, ids=page_id)


@cache
def code_blocks(page: Path) -> list[str]:
    return FENCE.findall(page.read_text())


@cache
def inline_code(page: Path) -> list[str]:
    """Inline code spans outside code blocks, their line breaks as spaces."""
    prose = FENCE.sub("", page.read_text())
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]


def command_lines(page: Path) -> Iterator[str]:
    """Every inline code span, and every line of the code blocks (continuations joined)."""
    yield from inline_code(page)
    for block in code_blocks(page):
        yield from block.replace("\\\n", " ").splitlines()


def words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote in prose
        return line.split()


@cache
def repository_files() -> tuple[str, ...]:
    """The repository's files: tracked, or new and not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return tuple(listed.stdout.split())


@cache
def repository_entries() -> frozenset[str]:
    """Top-level names of the repository's files."""
    return frozenset(name.split("/", 1)[0] for name in repository_files())


def repository_path(token: str) -> str | None:
    """``token`` as a path inside the repository, or None when it names something else."""
    path = token.strip("()[],;:'\"").removeprefix("./")
    first, slash, _ = path.partition("/")
    if first not in repository_entries() or not (slash or "." in first or first[0].isupper()):
        return None
    return path


def is_git_ignored(path: str) -> bool:
    """Made at run time: a place the repository ignores (model versions, .local/, ...)."""
    result = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO_ROOT, check=False)
    return result.returncode == 0


def pending(path: str) -> bool:
    return any(path.startswith(prefix) for prefix in PENDING_PATHS)


def path_exists(path: str) -> bool:
    if path in EXAMPLE_FILES:
        return True
    if "*" in path:
        return any(REPO_ROOT.glob(path))
    fixed = re.split(r"[<{]", path, maxsplit=1)[0]  # the part before a placeholder
    return (REPO_ROOT / fixed).exists() or is_git_ignored(fixed)


def named_paths(page: Path) -> set[str]:
    found = set()
    for line in command_lines(page):
        for token in line.split():
            path = repository_path(token)
            if path:
                found.add(path)
    return found


def linked_paths(page: Path) -> Iterator[tuple[str, str]]:
    """(path relative to the repository, anchor) of every relative Markdown link."""
    for target in re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        yield str(resolved.relative_to(REPO_ROOT)), anchor


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors: headings lower-cased, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.MULTILINE)
    return {
        re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-") for heading in headings
    }


@cache
def help_options(parse: Callable[[list[str]], object], *argv: str) -> str:
    """The help text of a command line (argparse prints it and exits)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parse([*argv, "--help"])
    return out.getvalue()


def embedded_options() -> set[str]:
    return set(re.findall(r"--[a-z][a-z0-9-]*", help_options(embedded_main.parse_args)))


def adclick_subcommands() -> set[str]:
    usage = help_options(adclick_cli.main)
    return set(re.search(r"\{([a-z,-]+)\}", usage).group(1).split(","))


def adclick_options(subcommand: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z0-9-]*", help_options(adclick_cli.main, subcommand)))


@cache
def compose_files() -> dict[str, dict]:
    return {
        name: yaml.safe_load((REPO_ROOT / name).read_text())
        for name in ("docker-compose.yaml", "docker-compose.worker.yaml")
    }


def compose_services() -> set[str]:
    return {name for compose in compose_files().values() for name in compose["services"]}


def compose_profiles() -> set[str]:
    return {
        profile
        for compose in compose_files().values()
        for service in compose["services"].values()
        for profile in service.get("profiles", [])
    }


# docker compose options that take a value, and the subcommands whose first argument is a
# service
COMPOSE_VALUE_OPTIONS = {"-f", "--file", "--env-file", "--profile", "-p", "--scale", "-e", "-u"}
COMPOSE_SERVICE_COMMANDS = {"exec", "cp", "run", "logs", "restart", "stop", "start", "ps"}


def compose_problems(args: list[str]) -> Iterator[str]:
    """What a `docker compose` command line names that the Compose files do not hold."""
    command = None
    index = 0
    while index < len(args):
        arg = args[index]
        value = args[index + 1] if index + 1 < len(args) else ""
        if arg in COMPOSE_VALUE_OPTIONS:
            if arg == "--profile" and value not in compose_profiles():
                yield f"profile {value!r}"
            if arg == "--scale" and value.partition("=")[0] not in compose_services():
                yield f"service {value!r}"
            if arg in ("-f", "--file") and not (REPO_ROOT / value).exists():
                yield f"file {value!r}"
            index += 2
            continue
        if arg.startswith("-"):
            index += 1
            continue
        if command is None:
            command = arg
        elif command in COMPOSE_SERVICE_COMMANDS:
            service = arg.partition(":")[0]
            if service not in compose_services():
                yield f"service {service!r} of `docker compose {command}`"
            return
        index += 1


class PendingCommand(str):
    """A command the docs name that work not in this tree yet delivers."""


def command_problems(line: str) -> Iterator[str]:
    """What a command line names that does not exist: scripts, their options, subcommands."""
    args = words(line)
    for index, arg in enumerate(args):
        rest = args[index + 1 :]
        options = {word.partition("=")[0] for word in rest if word.startswith("--")}
        if arg.startswith("scripts/") and not arg.endswith("/"):
            script = REPO_ROOT / arg
            if not (script.is_file() and script.stat().st_mode & 0o111):
                yield f"{arg} is not an executable script"
            if arg == "scripts/run-embedded":
                yield from (f"{arg} {option}" for option in options - embedded_options())
        if arg == "-m" and rest[:1] == ["embedded"]:
            yield from (f"python -m embedded {option}" for option in options - embedded_options())
        if arg == "-m" and rest[:1] == ["adclick"] and len(rest) > 1:
            subcommand = rest[1]
            if subcommand in PENDING_COMMANDS and subcommand not in adclick_subcommands():
                yield PendingCommand(subcommand)
                continue
            if subcommand not in adclick_subcommands():
                yield f"python -m adclick {subcommand}"
                continue
            known = adclick_options(subcommand)
            yield from (f"python -m adclick {subcommand} {o}" for o in options - known)
        if arg == "docker" and rest[:1] == ["compose"]:
            yield from (f"{line}: {problem}" for problem in compose_problems(rest[1:]))


def test_the_readme_is_one_page() -> None:
    size = (REPO_ROOT / "README.md").stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes, more than {README_MAX_BYTES}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {path for path, _ in linked_paths(REPO_ROOT / "README.md")}
    for page in PAGES[1:]:
        assert page_id(page) in linked, f"README.md does not link {page_id(page)}"


def skip_if_pending(page: Path, names: list[str]) -> None:
    """Once everything else has passed: skipped, with the reason, while a page, path or
    command the docs name is delivered by work not in this tree yet."""
    if names:
        reasons = {**PENDING_PATHS, **PENDING_COMMANDS}
        why = "; ".join(
            f"{name} ({reason})"
            for name in sorted(set(names))
            for prefix, reason in reasons.items()
            if name.startswith(prefix)
        )
        pytest.skip(f"{page_id(page)} names what is not in this tree yet: {why}")


@pages
def test_every_page_linked_exists_with_its_anchor(page: Path) -> None:
    waiting = []
    for path, anchor in linked_paths(page):
        target = REPO_ROOT / path
        if not target.exists() and pending(path):
            waiting.append(path)
            continue
        assert target.exists(), f"{page_id(page)} links {path}, which does not exist"
        if anchor:
            assert anchor in heading_anchors(target), f"{page_id(page)}: {path}#{anchor}"
    skip_if_pending(page, waiting)


@pages
def test_every_repository_path_named_exists(page: Path) -> None:
    absent = sorted(path for path in named_paths(page) if not path_exists(path))
    missing = [path for path in absent if not pending(path)]
    assert not missing, f"{page_id(page)} names paths that do not exist: {missing}"
    skip_if_pending(page, [path for path in absent if pending(path)])


@pages
def test_every_command_named_exists_with_its_options(page: Path) -> None:
    problems = [problem for line in command_lines(page) for problem in command_problems(line)]
    known = embedded_options() | {
        option for sub in adclick_subcommands() for option in adclick_options(sub)
    }
    # An option named alone, in prose: an option of one of the project's commands.
    alone = [span for span in inline_code(page) if re.fullmatch(r"--[a-z][a-z0-9-]*", span)]
    problems += [f"option {span}" for span in alone if span not in known]
    waiting = [str(problem) for problem in problems if isinstance(problem, PendingCommand)]
    problems = [problem for problem in problems if not isinstance(problem, PendingCommand)]
    assert not problems, f"{page_id(page)}: {problems}"
    skip_if_pending(page, waiting)


@cache
def monitor_routes() -> MapAdapter:
    """The Flask monitor's routes, as its app factory registers them."""
    app = create_app({"AIRFLOW_PASSWORD": "unused"})
    return app.url_map.bind("monitor.local")


@cache
def model_server_routes() -> MapAdapter:
    """The model service's routes, as its app factory registers them (no model loaded)."""
    app = Flask("model_server_routes")
    for blueprint in (model_server.views.bp, model_server.metrics.bp):
        app.register_blueprint(blueprint)
    return app.url_map.bind("model-server.local")


def route_exists(route: str) -> bool:
    """Served by the Flask monitor (GET) or the model service (GET or POST)."""
    path = re.sub(r"<[^>]+>", "x", route)
    routes = [(monitor_routes(), "GET"), (model_server_routes(), "GET")]
    for adapter, method in [*routes, (model_server_routes(), "POST")]:
        try:
            adapter.match(path, method=method)
        except RequestRedirect:
            return True
        except (NotFound, MethodNotAllowed):
            continue
        return True
    return False


@pages
def test_every_monitor_and_mail_catcher_route_named_is_served(page: Path) -> None:
    catcher = (REPO_ROOT / "embedded" / "mailcatcher.py").read_text()
    missing = []
    for span in inline_code(page):
        if not re.fullmatch(r"/[\w/<>{}.\- ]*", span) or span.startswith(NOT_MONITOR_ROUTES):
            continue
        if span.startswith(MAIL_CATCHER_ROUTES):
            if span not in catcher:
                missing.append(f"mail catcher {span}")
        elif not route_exists(span):
            missing.append(f"monitor {span}")
    assert not missing, f"{page_id(page)} names routes nothing serves: {missing}"


def prefixed_settings() -> set[str]:
    """The Flask monitor's and the model service's settings, as the environment names them."""
    return {
        *(f"{MONITOR_ENV_PREFIX}_{key}" for key in MONITOR_DEFAULTS),
        *(f"{MODEL_SERVER_ENV_PREFIX}_{key}" for key in MODEL_SERVER_DEFAULTS),
        *(f"{MODEL_SERVER_ENV_PREFIX}_{key}" for key in MODEL_SERVER_GUNICORN_DEFAULTS),
    }


@cache
def names_in_product_files() -> frozenset[str]:
    """Every upper-case name in the code, Compose files, Dockerfiles and scripts (not the docs,
    the tests or .env, which only documents), plus the monitor's prefixed settings."""
    skipped = ("tests/", "testkit/", "bench/", "docs/", "data/", "requirements/")
    names = prefixed_settings()
    for name in repository_files():
        if name.startswith(skipped) or name.endswith(".md") or name == ".env":
            continue
        with contextlib.suppress(UnicodeDecodeError, FileNotFoundError):
            names.update(VARIABLE.findall((REPO_ROOT / name).read_text()))
    return frozenset(names)


@pages
def test_every_environment_variable_named_is_read_somewhere(page: Path) -> None:
    spans = [*inline_code(page), *code_blocks(page)]
    named = {name for span in spans for name in VARIABLE.findall(span)}
    unknown = sorted(named - names_in_product_files())
    assert not unknown, f"{page_id(page)} names variables nothing reads: {unknown}"


def test_the_compose_page_lists_every_service_and_only_those() -> None:
    page = (REPO_ROOT / "docs" / "compose.md").read_text()
    table = page.split("## Services", 1)[1].split("\n## ", 1)[0]
    rows = [row for row in table.splitlines() if row.startswith("| `")]
    listed = {name for row in rows for name in re.findall(r"`([\w-]+)`", row.split("|")[1])}
    main = set(compose_files()["docker-compose.yaml"]["services"])
    assert listed == main, f"docs/compose.md lists {sorted(listed ^ main)} otherwise"


# Read from the environment but not settings of the stack: Python's and Airflow's own.
NOT_SETTINGS = {"AIRFLOW_HOME", "PYTHONPATH"}
ENVIRONMENT_READ = re.compile(
    r"(?:environ(?:\.get)?\(|environ\[|getenv\(|env\.get\(|environ\.setdefault\()\s*"
    r"\"([A-Z][A-Z0-9_]+)\""
)


def test_every_setting_the_code_reads_is_on_the_configuration_page() -> None:
    """Each variable the product packages read, and each of the monitor's settings."""
    page = (REPO_ROOT / "docs" / "configuration.md").read_text()
    read = prefixed_settings()
    packages = ("plugins/", "dags/", "flask_monitor/", "model_server/", "embedded/", "config/")
    for name in repository_files():
        if name.startswith(packages) and name.endswith(".py"):
            read.update(ENVIRONMENT_READ.findall((REPO_ROOT / name).read_text()))
    missing = sorted(name for name in read - NOT_SETTINGS if f"`{name}`" not in page)
    assert not missing, f"docs/configuration.md does not document {missing}"
