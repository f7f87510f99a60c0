"""What every benchmark shares: a throw-away embedded stack, and writing results.

Benchmarks report ratios against a baseline measured in the same run, because absolute
times on a shared 2-core machine drift from one run to the next.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT, REPO_ROOT / "plugins", REPO_ROOT / "flask_monitor"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from embedded.stack import EmbeddedStack  # noqa: E402
from testkit.ports import free_ports  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results"
MONITOR_DAG = "ad_click_monitor"
BENCH_DAGS = REPO_ROOT / "bench" / "dags"
# Benchmarks trigger every run themselves: a scheduled run landing mid-measurement would skew it.
NO_SCHEDULES = {"ADCLICK_TRAINING_SCHEDULE": "none", "ADCLICK_MONITOR_SCHEDULE": "none"}


def build_workspace(root: Path, extra_dags: Sequence[Path] = ()) -> dict[str, Path]:
    """dags/ (the project's plus ``extra_dags``), data/ with the sample, an empty model/."""
    dags = root / "dags"
    dags.mkdir()
    for source in [*(REPO_ROOT / "dags").glob("*.py"), *extra_dags]:
        (dags / source.name).symlink_to(source)
    data = root / "data"
    data.mkdir()
    shutil.copy(REPO_ROOT / "data" / "advertising.csv", data)
    return {"dags": dags, "data": data, "model": root / "model"}


@contextmanager
def embedded_stack(
    extra_dags: Sequence[Path] = (), extra_env: dict[str, str] | None = None
) -> Iterator[EmbeddedStack]:
    """A started embedded stack with the shipped settings, in a temporary directory, on free
    ports; stopped and deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="adclick-bench-") as tmp:
        paths = build_workspace(Path(tmp), extra_dags)
        stack = EmbeddedStack(
            home=Path(tmp) / "airflow",
            ports=free_ports(),
            dags_dir=paths["dags"],
            data_dir=paths["data"],
            model_dir=paths["model"],
            extra_env={**NO_SCHEDULES, **(extra_env or {})},
        )
        with stack:
            yield stack


def machine() -> dict[str, object]:
    """Where the figures were measured, written beside them."""
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_results(name: str, report: dict, markdown: str) -> tuple[Path, Path]:
    """``bench/results/<name>.json`` (everything, plus the machine) and ``<name>.md``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / f"{name}.json"
    md_path = RESULTS / f"{name}.md"
    json_path.write_text(json.dumps({"machine": machine(), **report}, indent=2) + "\n")
    md_path.write_text(markdown.rstrip() + "\n")
    return json_path, md_path


def compose_stack_client():
    """Admin client of the Compose stack scripts/e2e-docker brought up (its E2E_* variables)."""
    from airflow_rest import AirflowClient

    url = os.environ.get("E2E_AIRFLOW_URL")
    if not url:
        raise SystemExit("no Compose stack: run this through bench/celery-stack")
    from testkit.envfile import compose_stack_secrets

    values = compose_stack_secrets(json.loads(os.environ["E2E_COMPOSE"]))
    return AirflowClient(url, "admin", values["AIRFLOW_ADMIN_PASSWORD"], timeout=10.0)


def wait_until_monitor_idle(client, timeout: float = 120.0) -> None:
    """A training run ends by triggering the monitor DAG; its tasks would compete for the
    executor's slots with whatever is measured next, so wait for its runs to finish."""
    from testkit.waiting import wait_until

    wait_until(
        lambda: all(r["state"] in ("success", "failed") for r in client.runs(MONITOR_DAG, 5)),
        timeout,
        f"{MONITOR_DAG} runs to finish",
        poll=0.2,
    )
