"""Footprint: total PSS of the embedded stack at idle per component, against variants without
the scheduler's preload and with Airflow's defaults; or, with ``--compose-project``, PSS and
idle CPU per container of a running Compose stack (as root; result footprint_celery).

    .venv/bin/python bench/footprint.py [--variants shipped no-preload airflow-defaults]
    sudo .venv/bin/python bench/footprint.py --compose-project adclick
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from argparse import Namespace

import harness
import psutil
from harness import Report, Target, cell, table

from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from testkit.compose import project_containers
from testkit.flask_service import flask_pid, health
from testkit.waiting import wait_until

MEMORY_KINDS = ("pss", "rss", "uss")  # MB here are MiB
TARGET_MB = 1536.0  # 1.5 GiB
CELERY_TARGET_MB = 2560.0  # the Compose stack, with its object store, broker and database
VARIANTS: dict[str, dict[str, str]] = {
    "shipped": {},
    "no-preload": {"PYTHONPATH": ""},  # config/ off the path: no airflow_local_settings.py
    "airflow-defaults": {
        "PYTHONPATH": "",
        "AIRFLOW__CORE__PARALLELISM": "32",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "16",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "2",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "1",
    },
}
BASELINES = {"python": "pass", "import airflow": "import airflow"}  # name -> code it runs
COLUMNS = {"pss_mb": "PSS (MB)", "uss_mb": "USS (MB)", "processes": "processes"}
COLUMNS["idle_cpu_pct"] = "CPU at idle (% of a core)"
CPU_WINDOW_S = 30.0  # how long a running stack's CPU time is counted, with no run going
SAMPLE_INTERVAL_S = 5.0


def memory_of(roots: dict[str, list[int]]) -> dict:
    """Memory and processes per component (roots, descendants, sessions), and the totals."""
    owner = {root: name for name, pids in roots.items() for root in pids}
    members: dict[str, list] = {name: [] for name in roots}
    for proc in psutil.process_iter():
        try:
            lineage = [proc.pid, *(p.pid for p in proc.parents())]
            name = next((owner[p] for p in lineage if p in owner), owner.get(os.getsid(proc.pid)))
            if name:
                members[name].append(proc.memory_full_info())
        except (psutil.Error, OSError):  # gone meanwhile, or not ours to read
            continue
    components = {name: {"processes": len(found), **mib(found)} for name, found in members.items()}
    totals = {k: round(sum(c[f"{k}_mb"] for c in components.values()), 1) for k in MEMORY_KINDS}
    return {"components": components, **{f"total_{k}_mb": v for k, v in totals.items()}}


def mib(memory: list) -> dict[str, float]:
    """PSS, RSS and USS summed over psutil's ``memory_full_info`` of processes, MiB."""
    return {f"{k}_mb": round(sum(getattr(m, k) for m in memory) / 2**20, 1) for k in MEMORY_KINDS}


def bare_process(code: str) -> dict[str, float]:
    """PSS/RSS/USS of a lone idle interpreter after running ``code``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    with tempfile.TemporaryDirectory(prefix="adclick-footprint-") as home:
        script = f"{code}\nimport time\nprint('ready', flush=True)\ntime.sleep(600)"
        env |= {"AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        with subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, env=env
        ) as bare:
            bare.stdout.readline()
            time.sleep(1.0)
            memory = psutil.Process(bare.pid).memory_full_info()
            bare.kill()
    return mib([memory])


def measure_variant(env: dict[str, str], args: Namespace) -> tuple[dict, list]:
    """A variant booted, run, then idle: its median PSS sample, totals, boot and run times."""
    booted = time.perf_counter()
    with harness.embedded_stack(extra_env=env) as stack:
        ready_s = round(time.perf_counter() - booted, 1)
        client = stack.client()
        runs_s = [round(harness.timed_run(client, TRAINING)["wall_s"], 2) for _ in range(args.runs)]
        harness.wait_until_monitor_idle(client)
        wait_until(lambda: health(stack) == 200, 120, "the Flask monitor", poll=0.5)
        time.sleep(args.idle)
        samples = []
        for i in range(args.samples):
            time.sleep(SAMPLE_INTERVAL_S if i else 0)
            roots = {component: [proc.pid] for component, proc in stack._procs.items()}
            samples.append(memory_of(roots | {"flask-monitor": [flask_pid(stack) or -1]}))
    # Idle is not flat (re-parsing children, the scheduler's GC un-sharing pages): report the
    # sample with the median total, and the largest total.
    totals = [s["total_pss_mb"] for s in samples]
    median = sorted(samples, key=lambda s: s["total_pss_mb"])[len(samples) // 2]
    components = {
        c: {k: v[k] for k in ("pss_mb", "processes")} for c, v in median["components"].items()
    }
    figures = {
        "ready_s": ready_s,
        "training_runs_s": runs_s,
        **{k: median[f"total_{k}_mb"] for k in MEMORY_KINDS},
    }
    return figures | {
        "components": components,
        "sample_totals_pss_mb": totals,
        "max_total_pss_mb": max(totals),
    }, samples


def variants_report(f: dict) -> Report:
    """The embedded variants (``measure_variant``) beside the bare baselines."""
    variants, baselines = f["variants"], f["baselines"]
    names, shipped = list(variants), variants.get("shipped")
    base = (shipped or variants[names[0]])["pss"]
    airflow_mb = baselines["import airflow"]["pss_mb"]
    components = dict.fromkeys(c for v in variants.values() for c in v["components"])
    component = lambda c: lambda v: "{pss_mb:.0f} ({processes})".format(**v["components"][c])  # noqa: E731
    cells = {  # row label -> the cell of one variant
        **{c: component(c) for c in components},
        "**total PSS** (median sample)": lambda v: f"**{v['pss']:.0f}**",
        "**total PSS, largest sample**": lambda v: f"**{v['max_total_pss_mb']:.0f}**",
        "total PSS vs shipped": lambda v: f"{v['pss'] - base:+.0f}",
        "total RSS (shared pages once per process)": lambda v: f"{v['rss']:.0f}",
        "total USS (private pages only)": lambda v: f"{v['uss']:.0f}",
        "PSS samples": lambda v: ", ".join(f"{t:.0f}" for t in v["sample_totals_pss_mb"]),
        "training run trigger->success (s), first / next": lambda v: " / ".join(
            map(str, v["training_runs_s"])
        ),
        "boot until DAGs parsed (s)": lambda v: f"{v['ready_s']:.0f}",
        "total PSS in bare `import airflow` processes": lambda v: f"{v['pss'] / airflow_mb:.1f}",
    }
    rows = [(label, *(show(variants[n]) for n in names)) for label, show in cells.items()]
    goal = f"shipped total PSS, largest sample, <= {TARGET_MB:.0f} MiB"
    worst = shipped and shipped["max_total_pss_mb"]
    targets = [Target(goal, f"{worst:.0f} MiB", worst <= TARGET_MB)] if shipped else []
    method = (
        "Each variant booted, its training runs and their monitor runs done, then idle: the PSS "
        "of every process of every component (its process and descendants, the nearest "
        f"component winning), {f['samples']} samples {f['interval_s']:g} s apart after "
        f"{f['idle_s']:g} s idle; schedules off."
    )
    sections = [
        "PSS in MB (processes):\n\n" + table(("component", *names), rows),
        f"Baselines, same run, no stack up: a bare interpreter {baselines['python']['pss_mb']:.0f} "
        f"MB PSS; a process after `import airflow` {airflow_mb:.0f} MB PSS.",
    ]
    title = "Footprint: embedded stack (SQLite + LocalExecutor) at idle"
    return Report("footprint", title, method, targets, sections, f)


def measure_containers(project: str) -> dict[str, dict]:
    """Per service of a running Compose project: memory, and CPU at idle in % of a core."""
    found = project_containers(project)
    if not found:
        raise SystemExit(f"no running containers in compose project {project!r}")
    pids = {c["Config"]["Labels"]["com.docker.compose.service"]: c["State"]["Pid"] for c in found}
    before = {service: harness.cpu_seconds(pid) for service, pid in pids.items()}
    time.sleep(CPU_WINDOW_S)
    memory = memory_of({service: [pid] for service, pid in pids.items()})["components"]
    containers = {}
    for service, pid in pids.items():
        used = None if before[service] is None else harness.cpu_seconds(pid) - before[service]
        containers[service] = {k: memory[service][k] for k in ("processes", "pss_mb", "uss_mb")}
        containers[service]["idle_cpu_pct"] = used and round(100 * used / CPU_WINDOW_S, 1)
    return containers


def containers_report(f: dict) -> Report:
    """The Report of ``measure_containers``, beside a bare ``import airflow`` process."""
    containers = sorted(f["containers"].items(), key=lambda kv: -kv[1]["pss_mb"])
    totals = {k: sum(v[k] or 0 for _, v in containers) for k in COLUMNS}
    rows = [(name, *(cell(v[k], 0) for k in COLUMNS)) for name, v in containers]
    total = [
        f"**{totals['pss_mb']:.0f}**",
        cell(totals["uss_mb"], 0),
        "",
        cell(totals["idle_cpu_pct"], 0),
    ]
    rows.append(("**total**", *total))
    method = (
        "A running stack, measured as found: PSS summed over the processes of each container, "
        f"and the CPU time its cgroup used over {CPU_WINDOW_S:g} s with no run going. Baseline, "
        "same run: a host process after `import airflow`, "
        f"{f['baseline_import_airflow']['pss_mb']:.0f} MB PSS."
    )
    goal = f"all containers' PSS <= {CELERY_TARGET_MB:.0f} MiB"
    target = Target(goal, f"{totals['pss_mb']:.0f} MiB", totals["pss_mb"] <= CELERY_TARGET_MB)
    title = f"Footprint: Celery stack (Docker Compose project `{f['compose_project']}`)"
    return Report(
        "footprint_celery",
        title,
        method,
        [target],
        [table(("container", *COLUMNS.values()), rows)],
        f,
    )


def main(argv: list[str] | None = None) -> int:
    reports = {"footprint": variants_report, "footprint_celery": containers_report}
    parser = harness.Arguments(__doc__, reports)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--idle", type=float, default=20.0, help="idle seconds before measuring")
    parser.add_argument("--runs", type=int, default=2, help="training runs before idling")
    parser.add_argument("--samples", type=int, default=7, help="PSS samples after the idle wait")
    parser.add_argument("--compose-project", help="measure this running Compose project instead")
    args = parser.parse_args(argv)
    if project := args.compose_project:
        figures = {"compose_project": project, "containers": measure_containers(project)}
        figures["baseline_import_airflow"] = bare_process("import airflow")
        harness.publish(containers_report(figures), args.results)
        return 0
    baselines = {name: bare_process(code) for name, code in BASELINES.items()}
    measured = {name: measure_variant(VARIANTS[name], args) for name in args.variants}
    figures = {"idle_s": args.idle, "samples": args.samples, "interval_s": SAMPLE_INTERVAL_S}
    figures |= {"baselines": baselines, "variants": {n: m[0] for n, m in measured.items()}}
    samples = {name: m[1] for name, m in measured.items()}
    harness.publish(variants_report(figures), args.results, samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
