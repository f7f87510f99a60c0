"""Footprint: total PSS of the embedded stack at idle, per component, against baselines.

    .venv/bin/python bench/footprint.py [--variants shipped no-preload airflow-defaults]
    sudo .venv/bin/python bench/footprint.py --compose-project adclick   # a running Compose stack

Embedded mode boots each variant of the embedded stack in turn (``embedded_stack()``, free
ports, temp dir), waits until the DAGs are parsed, runs the training DAG to success (twice:
the first run pays cold imports, the second shows the warm task latency), waits for the
monitor run it triggers and for the Flask monitor to answer, then lets the stack idle
(``--idle`` s) and sums the PSS (``/proc/<pid>/smaps_rollup``) of every process of every
component: the session (process group) each component was started in plus any descendant,
and the Flask monitor's gunicorn session (pid in ``flask-monitor.pid``). PSS shares each
shared page among the processes mapping it, so the sum counts every page once.

Variants (the first is the target; the others are baselines measured in the same run):

* ``shipped``: the shipped settings (config/airflow.cfg, embedded/stack.py), ML libraries
  preloaded into the scheduler by config/airflow_local_settings.py;
* ``no-preload``: the same without airflow_local_settings.py (no preloaded ML libraries):
  the memory the preload costs, against the task latency it saves;
* ``airflow-defaults``: Airflow's defaults for what the shipped config tunes (parallelism 32,
  32 pre-forked LocalExecutor workers, 2 parsing processes, 1 s scheduler sleep) and no
  preload.

Also measured first, with no stack running: a bare interpreter and a process that has only
run ``import airflow``. Target: shipped total PSS <= 1.5 GB at idle.
Writes bench/results/footprint.{md,json}.

Compose mode measures a running Docker Compose project instead (it starts nothing): for each
container of ``--compose-project``, the PSS sum of the processes in its cgroup (read from the
host's /proc: run as root), the cgroup's ``memory.current``, and ``docker stats`` usage.
Start the stack and let one training run finish first. Writes
bench/results/footprint_celery.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support import NO_SCHEDULES, REPO_ROOT, embedded_stack, write_results

TARGET_MB = 1536.0  # 1.5 GiB; MB in this file are MiB (smaps counts KiB)
TARGET_DECIMAL_MB = 1.5e9 / 2**20  # 1.5 GB read as 10^9 bytes: 1430.5 MiB
TRAINING, MONITOR = "ad_click_training", "ad_click_monitor"
PLUGINS = str(REPO_ROOT / "plugins")
VARIANTS: dict[str, dict[str, str]] = {
    "shipped": {},
    # config/ (airflow_local_settings.py) off the path: no preloaded ML libraries.
    "no-preload": {"PYTHONPATH": PLUGINS},
    "airflow-defaults": {
        "PYTHONPATH": PLUGINS,
        "AIRFLOW__CORE__PARALLELISM": "32",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "16",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "2",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "1",
    },
}
MB = 1024  # smaps values are in kB


# -- /proc -----------------------------------------------------------------------------------
def process_table() -> dict[int, dict]:
    """pid -> ppid, session, name and command line of every process visible now."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = {
            "ppid": int(fields[1]),
            "session": int(fields[3]),
            "name": name,
            "cmd": cmdline.replace(b"\0", b" ").decode(errors="replace").strip()[:160],
        }
    return table


def memory_kb(pid: int) -> dict[str, int] | None:
    """Pss, Rss and USS (private pages) of one process, in kB; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0])
    return {
        "pss": values.get("Pss", 0),
        "rss": values.get("Rss", 0),
        "uss": values.get("Private_Clean", 0) + values.get("Private_Dirty", 0),
        "swap_pss": values.get("SwapPss", 0),
    }


def assign(roots: dict[str, list[int]], table: dict[int, dict]) -> dict[str, list[int]]:
    """Processes of each component: those in a root's session, then descendants of those.

    A process belongs to the component whose session it is in; otherwise to the component
    of its nearest owned ancestor (e.g. a child that called setsid). Each process counts once.
    """
    session_owner = {root: name for name, pids in roots.items() for root in pids}
    owner: dict[int, str] = {}
    for pid, info in table.items():
        if info["session"] in session_owner:
            owner[pid] = session_owner[info["session"]]
        elif pid in session_owner:
            owner[pid] = session_owner[pid]
    for pid in table:
        if pid in owner:
            continue
        seen, parent = set(), table[pid]["ppid"]
        while parent in table and parent not in seen and parent not in owner:
            seen.add(parent)
            parent = table[parent]["ppid"]
        if parent in owner:
            owner[pid] = owner[parent]
    members: dict[str, list[int]] = {name: [] for name in roots}
    for pid, name in sorted(owner.items()):
        members[name].append(pid)
    return members


def measure(members: dict[str, list[int]], table: dict[int, dict]) -> dict:
    """PSS/RSS/USS per component (MB) with its processes, and the total."""
    components, total = {}, {"pss": 0, "rss": 0, "uss": 0, "swap_pss": 0}
    for name, pids in members.items():
        sums = {"pss": 0, "rss": 0, "uss": 0, "swap_pss": 0}
        processes = []
        for pid in pids:
            mem = memory_kb(pid)
            if mem is None:
                continue
            for key in sums:
                sums[key] += mem[key]
            processes.append(
                {
                    "pid": pid,
                    "name": table[pid]["name"],
                    "cmd": table[pid]["cmd"],
                    "pss_mb": round(mem["pss"] / MB, 1),
                    "rss_mb": round(mem["rss"] / MB, 1),
                }
            )
        for key in total:
            total[key] += sums[key]
        components[name] = {
            "processes": len(processes),
            **{f"{key}_mb": round(value / MB, 1) for key, value in sums.items()},
            "detail": processes,
        }
    return {
        "components": components,
        **{f"total_{k}_mb": round(v / MB, 1) for k, v in total.items()},
    }


def sample_stack(roots: dict[str, list[int]], samples: int, interval: float) -> dict:
    """``samples`` measurements ``interval`` s apart: the one with the median total PSS, and
    the largest total (idle is not flat: the dag-processor re-parses the DAG files in short-lived
    children, the scheduler's garbage collector un-shares pages it shares with its workers)."""
    taken = []
    for i in range(samples):
        if i:
            time.sleep(interval)
        table = process_table()
        taken.append(measure(assign(roots, table), table))
    totals = [t["total_pss_mb"] for t in taken]
    chosen = sorted(taken, key=lambda t: t["total_pss_mb"])[len(taken) // 2]
    return {**chosen, "sample_totals_pss_mb": totals, "max_total_pss_mb": max(totals)}


# -- baselines without a stack ---------------------------------------------------------------
def bare_process(code: str) -> dict:
    """PSS/RSS of a lone interpreter after running ``code`` (idle, nothing else shares it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    with tempfile.TemporaryDirectory(prefix="adclick-footprint-") as home:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"{code}\nimport time\nprint('ready', flush=True)\ntime.sleep(600)",
            ],
            stdout=subprocess.PIPE,
            env={**env, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
        )
        try:
            proc.stdout.readline()
            time.sleep(1.0)
            mem = memory_kb(proc.pid) or {"pss": 0, "rss": 0, "uss": 0}
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
    return {
        "pss_mb": round(mem["pss"] / MB, 1),
        "rss_mb": round(mem["rss"] / MB, 1),
        "uss_mb": round(mem["uss"] / MB, 1),
    }


# -- embedded mode -----------------------------------------------------------------------------
def timed_training_run(client) -> float:
    started = time.perf_counter()
    run = client.trigger(TRAINING, {})
    final = client.wait_for_run(TRAINING, run["dag_run_id"], timeout=300, poll=0.1)
    if final["state"] != "success":
        raise RuntimeError(f"training run {run['dag_run_id']} ended {final['state']}")
    return round(time.perf_counter() - started, 2)


def wait_monitor_and_flask(stack, client, timeout: float = 120.0) -> None:
    """The monitor run the training run triggered ends, and the Flask monitor answers."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.latest_run(MONITOR)
        flask_up = False
        try:
            urllib.request.urlopen(f"{stack.flask_url}/health", timeout=2).read()
            flask_up = True
        except OSError:
            pass
        if run and run["state"] in ("success", "failed") and flask_up:
            return
        time.sleep(0.5)
    raise TimeoutError("monitor run not finished or Flask monitor not answering")


def measure_variant(name: str, env: dict[str, str], args) -> dict:
    print(f"[{name}] booting the embedded stack", flush=True)
    booted = time.perf_counter()
    with embedded_stack(extra_env=env) as stack:
        stack.wait_for_dags((TRAINING, MONITOR))
        ready_s = time.perf_counter() - booted
        client = stack.client()
        runs_s = [timed_training_run(client) for _ in range(args.runs)]
        wait_monitor_and_flask(stack, client)
        print(f"[{name}] training runs {runs_s} s; idling {args.idle:.0f} s", flush=True)
        time.sleep(args.idle)
        roots = {c: [p.pid] for c, p in stack._procs.items()}
        roots["flask-monitor"] = [pid] if (pid := stack.flask_pid()) else []
        result = sample_stack(roots, args.samples, args.interval)
        dags = sorted(d["dag_id"] for d in client.request("GET", "/api/v2/dags")["dags"])
    print(f"[{name}] total PSS {result['total_pss_mb']:.0f} MB", flush=True)
    return {
        "env": env,
        "ready_s": round(ready_s, 1),
        "training_runs_s": runs_s,
        "dags": dags,
        **result,
    }


def run_embedded(args) -> dict:
    load_at_start = round(os.getloadavg()[0], 2)
    baselines = {
        "python": bare_process("pass"),
        "import airflow": bare_process("import airflow"),
    }
    print(f"baselines: {json.dumps(baselines)}", flush=True)
    variants = {name: measure_variant(name, VARIANTS[name], args) for name in args.variants}
    airflow_mb = baselines["import airflow"]["pss_mb"]
    summary = {
        name: {
            "total_pss_mb": v["total_pss_mb"],
            "max_total_pss_mb": v["max_total_pss_mb"],
            "total_rss_mb": v["total_rss_mb"],
            "processes": sum(c["processes"] for c in v["components"].values()),
            "in_bare_airflow_processes": round(v["total_pss_mb"] / airflow_mb, 1),
            "training_runs_s": v["training_runs_s"],
        }
        for name, v in variants.items()
    }
    if "shipped" in variants:
        shipped = variants["shipped"]["max_total_pss_mb"]  # the worst sample, not the median
        summary["target_mb"] = TARGET_MB
        summary["meets_target"] = shipped <= TARGET_MB
        summary["headroom_mb"] = round(TARGET_MB - shipped, 1)
        summary["meets_target_decimal_gb"] = shipped <= TARGET_DECIMAL_MB
        summary["headroom_decimal_gb_mb"] = round(TARGET_DECIMAL_MB - shipped, 1)
    return {
        "mode": "embedded",
        "schedules_off": sorted(NO_SCHEDULES),
        "idle_s": args.idle,
        "interval_s": args.interval,
        "load_average_1m_at_start": load_at_start,
        "summary": summary,
        "baselines": baselines,
        "variants": variants,
    }


VARIANT_NOTES = {
    "shipped": "config/airflow.cfg + embedded/stack.py as shipped; ML libraries preloaded",
    "no-preload": "shipped, without airflow_local_settings.py (no ML preload in the scheduler)",
    "airflow-defaults": "parallelism 32, 2 parsing processes, 1 s scheduler sleep; no preload",
}


def _trade_offs(variants: dict) -> list[str]:
    """What each baseline variant costs or saves against ``shipped``, memory against latency."""
    shipped = variants["shipped"]
    lines = []
    for name, v in variants.items():
        if name == "shipped":
            continue
        lines.append(
            f"- `{name}` vs `shipped`: {v['max_total_pss_mb'] - shipped['max_total_pss_mb']:+.0f}"
            f" MB PSS (largest samples); training run after the first "
            f"{v['training_runs_s'][-1]:.1f} s vs {shipped['training_runs_s'][-1]:.1f} s."
        )
    return ["", *lines] if lines else []


def write_embedded(report: dict) -> None:
    variants = report["variants"]
    names = list(variants)
    first = variants[names[0]]
    components = list(dict.fromkeys(c for v in variants.values() for c in v["components"]))
    b, s = report["baselines"], report["summary"]

    def row(label: str, cell) -> str:
        return f"| {label} | " + " | ".join(cell(variants[n]) for n in names) + " |"

    def component_cell(component: str):
        def cell(v: dict) -> str:
            c = v["components"].get(component)
            return f"{c['pss_mb']:.0f} ({c['processes']})" if c else "-"

        return cell

    base = variants.get("shipped", first)["total_pss_mb"]
    lines = [
        "# Footprint: embedded stack (SQLite + LocalExecutor) at idle",
        "",
        "`.venv/bin/python bench/footprint.py` — each variant booted with `embedded_stack()`;",
        f"DAGs parsed, the training DAG run to success {len(first['training_runs_s'])} times,",
        "the monitor run it triggers done and the Flask monitor up, then "
        f"{report['idle_s']:.0f} s idle.",
        "PSS summed over every process of each component (its session and descendants; Flask:",
        "the gunicorn session the monitor DAG started). Log servers on free ports, so each",
        "stack's `serve-logs` runs as it does for a lone stack. Schedules off: "
        f"{', '.join(report['schedules_off'])}; DAGs: {', '.join(first['dags'])}.",
        "",
        *(f"- `{n}`: {VARIANT_NOTES.get(n, n)}" for n in names),
        "",
        "PSS in MB (processes):",
        "",
        "| component | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
        *(row(component, component_cell(component)) for component in components),
        row("**total PSS** (median sample)", lambda v: f"**{v['total_pss_mb']:.0f}**"),
        row("**total PSS, largest sample**", lambda v: f"**{v['max_total_pss_mb']:.0f}**"),
        row("total PSS vs shipped", lambda v: f"{v['total_pss_mb'] - base:+.0f}"),
        row(
            "total RSS (shared pages counted again per process)",
            lambda v: f"{v['total_rss_mb']:.0f}",
        ),
        row("total USS (private pages only)", lambda v: f"{v['total_uss_mb']:.0f}"),
        row(
            f"PSS samples, {report['interval_s']:g} s apart",
            lambda v: ", ".join(f"{t:.0f}" for t in v["sample_totals_pss_mb"]),
        ),
        row(
            "training run trigger->success (s), first / next",
            lambda v: " / ".join(f"{t:.1f}" for t in v["training_runs_s"]),
        ),
        row("boot until DAGs parsed (s)", lambda v: f"{v['ready_s']:.0f}"),
        row(
            "total PSS in bare `import airflow` processes",
            lambda v: f"{v['total_pss_mb'] / b['import airflow']['pss_mb']:.1f}",
        ),
        "",
        "Baselines measured in the same run, with no stack up: a bare interpreter "
        f"{b['python']['pss_mb']:.0f} MB PSS;",
        f"a process after `import airflow` {b['import airflow']['pss_mb']:.0f} MB PSS "
        f"({b['import airflow']['rss_mb']:.0f} MB RSS).",
    ]
    if "shipped" in variants:
        shipped = variants["shipped"]
        lines += [
            "",
            "**Target**: shipped total PSS, largest sample, "
            f"{shipped['max_total_pss_mb']:.0f} MB <= "
            f"{TARGET_MB:.0f} MB: {'met' if s['meets_target'] else '**not met**'} "
            f"(headroom {s['headroom_mb']:.0f} MB). MB here are MiB (2^20 bytes); read as "
            f"1.5 x 10^9 bytes ({TARGET_DECIMAL_MB:.0f} MiB) the target is "
            f"{'met' if s['meets_target_decimal_gb'] else '**not met**'} too "
            f"(headroom {s['headroom_decimal_gb_mb']:.0f} MiB).",
            *_trade_offs(variants),
            "",
            "Every process of the `shipped` stack:",
            "",
            "| component | pid | PSS (MB) | RSS (MB) | process |",
            "| --- | --- | --- | --- | --- |",
            *(
                f"| {component} | {p['pid']} | {p['pss_mb']:.0f} | {p['rss_mb']:.0f} "
                f"| `{p['cmd'][:70]}` |"
                for component, c in shipped["components"].items()
                for p in c["detail"]
            ),
        ]
    lines += [
        "",
        f"Load average at start {report['load_average_1m_at_start']} (machine details and every "
        "process of every variant in footprint.json).",
    ]
    write_results("footprint", report, "\n".join(lines))


# -- compose mode ------------------------------------------------------------------------------
def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


def container_cgroup(pid: int) -> tuple[list[int], float] | None:
    """Processes and charged memory (MB) of the memory cgroup ``pid`` is in: cgroup v2
    (``memory.current``; also the hybrid ``unified`` mount) or v1 (``memory.usage_in_bytes``).
    None for the root cgroup (that would be the whole host) or when it cannot be read."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if path.strip("/") == "":
            continue
        if controllers == "":  # v2
            for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                candidates.append((Path(root) / path.lstrip("/"), "memory.current"))
        elif "memory" in controllers.split(","):  # v1
            candidates.append(
                (Path("/sys/fs/cgroup/memory") / path.lstrip("/"), "memory.usage_in_bytes")
            )
    for directory, usage in candidates:
        try:
            pids = [int(p) for p in (directory / "cgroup.procs").read_text().split()]
            charged = int((directory / usage).read_text()) / 2**20
        except (OSError, ValueError):
            continue
        if pid in pids:
            return pids, charged
    return None


def _size_mb(text: str) -> float:
    units = {
        "B": 1 / 2**20,
        "KiB": 1 / 1024,
        "MiB": 1,
        "GiB": 1024,
        "kB": 1 / 1024,
        "MB": 1,
        "GB": 1024,
    }
    text = text.strip()
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text) / 2**20


def run_compose(args) -> dict:
    load_at_start = round(os.getloadavg()[0], 2)
    ids = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={args.compose_project}")
    ids = ids.split()
    if not ids:
        raise SystemExit(f"no running containers in compose project {args.compose_project!r}")
    inspected = json.loads(docker("inspect", *ids))
    stats = {}
    for line in docker("stats", "--no-stream", "--format", "{{json .}}", *ids).splitlines():
        entry = json.loads(line)
        stats[entry["ID"][:12]] = _size_mb(entry["MemUsage"].split("/")[0])
    table = process_table()
    containers = {}
    for c in inspected:
        service = c["Config"]["Labels"].get("com.docker.compose.service", c["Name"].lstrip("/"))
        init_pid = c["State"]["Pid"]
        group = container_cgroup(init_pid)
        if group is not None:
            pids, current = group
        else:  # no cgroup to read: the container's init, its session and descendants
            pids, current = assign({service: [init_pid]}, table)[service] or [init_pid], None
        measured = measure({service: [p for p in pids if p in table]}, table)["components"]
        containers[service] = {
            **measured[service],
            "cgroup_memory_current_mb": round(current, 1) if current is not None else None,
            "docker_stats_mb": round(stats.get(c["Id"][:12], 0.0), 1),
        }
    totals = {
        key: round(sum(v[key] or 0 for v in containers.values()), 1)
        for key in ("pss_mb", "rss_mb", "uss_mb", "cgroup_memory_current_mb", "docker_stats_mb")
    }
    baselines = {"import airflow (host)": bare_process("import airflow")}
    return {
        "mode": "compose",
        "compose_project": args.compose_project,
        "load_average_1m_at_start": load_at_start,
        "summary": {**{f"total_{k}": v for k, v in totals.items()}, "target_mb": TARGET_MB},
        "baselines": baselines,
        "containers": containers,
    }


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def write_compose(report: dict) -> None:
    c = report["containers"]
    rows = "\n".join(
        f"| {name} | {v['pss_mb']:.0f} | {v['uss_mb']:.0f} | {v['processes']} | "
        f"{v['docker_stats_mb']:.0f} | {_mb(v['cgroup_memory_current_mb'])} |"
        for name, v in sorted(c.items(), key=lambda kv: -kv[1]["pss_mb"])
    )
    s = report["summary"]
    markdown = f"""# Footprint: Celery stack (Docker Compose project `{report["compose_project"]}`)

`sudo .venv/bin/python bench/footprint.py --compose-project {report["compose_project"]}` —
a running stack, measured as found. PSS summed over the processes of each container's cgroup
(host /proc); beside it `docker stats` usage (the cgroup's charge minus inactive page cache)
and the cgroup's whole charge (`memory.current` / `memory.usage_in_bytes`: with page cache).

| container | PSS (MB) | USS (MB) | processes | docker stats (MB) | cgroup charge (MB) |
| --- | --- | --- | --- | --- | --- |
{rows}
| **total** | **{s["total_pss_mb"]:.0f}** | {s["total_uss_mb"]:.0f} | \
| {s["total_docker_stats_mb"]:.0f} | {_mb(s["total_cgroup_memory_current_mb"])} |

Baseline, same run: a host process after `import airflow`:
{report["baselines"]["import airflow (host)"]["pss_mb"]:.0f} MB PSS. The 1.5 GB target is the
embedded stack's; this one is reported beside it (Postgres, Redis, Celery worker, Flower,
mail catcher and socket proxy are extra processes).

Load average at start {report["load_average_1m_at_start"]}.
"""
    write_results("footprint_celery", report, markdown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--idle", type=float, default=20.0, help="idle seconds before measuring")
    parser.add_argument("--runs", type=int, default=2, help="training runs before idling")
    parser.add_argument("--samples", type=int, default=7, help="PSS samples after the idle wait")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--compose-project", help="measure this running Compose project instead")
    args = parser.parse_args(argv)
    if args.compose_project:
        report = run_compose(args)
        write_compose(report)
    else:
        report = run_embedded(args)
        write_embedded(report)
    print(json.dumps(report["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
