"""Footprint: total PSS of the embedded stack at idle, per component, against baselines.

    .venv/bin/python bench/footprint.py [--variants shipped no-preload airflow-defaults]
    sudo .venv/bin/python bench/footprint.py --compose-project adclick   # a running Compose stack

Measures each variant of the embedded stack after it parsed its DAGs, ran the training DAG
to success ``--runs`` times (the first pays cold imports), finished the monitor run that
triggers and got the Flask monitor up, then idled ``--idle`` s: the PSS
(``/proc/<pid>/smaps_rollup``, each shared page split among the processes mapping it, so the
sum counts it once) of every process of every component (its session and descendants; Flask:
the gunicorn session the monitor DAG started), ``--samples`` times. Against, in the same run:
a bare interpreter and a process that only ran ``import airflow``, and the baseline variants:

* ``shipped``: the shipped settings, ML libraries preloaded into the scheduler
  (config/airflow_local_settings.py); the target is its largest sample <= 1.5 GiB;
* ``no-preload``: the same without airflow_local_settings.py: the memory the preload costs,
  against the task latency it saves;
* ``airflow-defaults``: Airflow's defaults for what the shipped config tunes (parallelism 32,
  2 parsing processes, 1 s scheduler sleep), no preload.

``--compose-project`` measures a running Compose project instead (it starts nothing): per
container, the PSS of the processes in its cgroup (host /proc: run as root), the cgroup's
charge and ``docker stats``; results in footprint_celery.*.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from harness import NO_SCHEDULES, Report, Target, arguments, embedded_stack, publish, table

from adclick_airflow.settings import MONITOR_DAG_ID as MONITOR
from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from airflow_rest import TERMINAL_STATES
from testkit.compose import docker
from testkit.waiting import wait_until

TARGET_MB = 1536.0  # 1.5 GiB; MB in this file are MiB (smaps counts KiB)
KINDS = ("pss", "rss", "uss")
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


# -- /proc ------------------------------------------------------------------------------------
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
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = {
            "ppid": int(fields[1]),
            "session": int(fields[3]),
            "name": stat[stat.index("(") + 1 : stat.rindex(")")],
            "cmd": cmdline.replace(b"\0", b" ").decode(errors="replace").strip()[:160],
        }
    return table


def memory_mb(pid: int) -> dict[str, float] | None:
    """PSS, RSS and USS (private pages) of one process; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    kb = {}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        if rest.split() and rest.split()[0].isdigit():
            kb[key] = int(rest.split()[0])
    private = kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)
    return {"pss": kb.get("Pss", 0) / 1024, "rss": kb.get("Rss", 0) / 1024, "uss": private / 1024}


def assign(roots: dict[str, list[int]], table: dict[int, dict]) -> dict[str, list[int]]:
    """Each component's processes: those in a root's session, then the descendants of those
    (a child that called setsid); every process counted once."""
    session_owner = {root: name for name, pids in roots.items() for root in pids}
    owner = {
        pid: session_owner.get(info["session"], session_owner.get(pid))
        for pid, info in table.items()
        if info["session"] in session_owner or pid in session_owner
    }
    for pid in table:
        if pid in owner:
            continue
        parent, seen = table[pid]["ppid"], set()
        while parent in table and parent not in seen and parent not in owner:
            seen.add(parent)
            parent = table[parent]["ppid"]
        if parent in owner:
            owner[pid] = owner[parent]
    return {name: sorted(p for p, o in owner.items() if o == name) for name in roots}


def measure(members: dict[str, list[int]], table: dict[int, dict]) -> dict:
    """PSS/RSS/USS per component with its processes, and the totals."""
    components = {}
    for name, pids in members.items():
        found = [(pid, m) for pid in pids if (m := memory_mb(pid)) is not None]
        components[name] = {
            "processes": len(found),
            **{f"{k}_mb": round(sum(m[k] for _, m in found), 1) for k in KINDS},
            "detail": [
                {"pid": pid, "cmd": table[pid]["cmd"], "pss_mb": round(m["pss"], 1)}
                for pid, m in found
            ],
        }
    totals = {
        f"total_{k}_mb": round(sum(c[f"{k}_mb"] for c in components.values()), 1) for k in KINDS
    }
    return {"components": components, **totals}


def bare_process(code: str) -> dict[str, float]:
    """PSS/RSS/USS of a lone idle interpreter after running ``code``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    with tempfile.TemporaryDirectory(prefix="adclick-footprint-") as home:
        script = f"{code}\nimport time\nprint('ready', flush=True)\ntime.sleep(600)"
        env |= {"AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
        try:
            proc.stdout.readline()
            time.sleep(1.0)
            mem = memory_mb(proc.pid) or dict.fromkeys(KINDS, 0.0)
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
    return {f"{k}_mb": round(v, 1) for k, v in mem.items()}


# -- embedded mode ----------------------------------------------------------------------------
def measure_variant(name: str, env: dict[str, str], args) -> dict:
    print(f"[{name}] booting the embedded stack", flush=True)
    booted = time.perf_counter()
    with embedded_stack(extra_env=env) as stack:
        ready_s = round(time.perf_counter() - booted, 1)
        client = stack.client()
        runs_s = []
        for _ in range(args.runs):
            started = time.perf_counter()
            run = client.wait_for_run(TRAINING, client.trigger(TRAINING)["dag_run_id"], 300, 0.1)
            if run["state"] != "success":
                raise RuntimeError(f"training run {run['dag_run_id']} ended {run['state']}")
            runs_s.append(round(time.perf_counter() - started, 2))

        def monitor_done_and_flask_up() -> bool:
            if (client.latest_run(MONITOR) or {}).get("state") not in TERMINAL_STATES:
                return False
            try:
                return bool(urllib.request.urlopen(f"{stack.flask_url}/health", timeout=2).read())
            except OSError:
                return False

        wait_until(monitor_done_and_flask_up, 120, "the monitor run and the Flask monitor", 0.5)
        print(f"[{name}] training runs {runs_s} s; idling {args.idle:.0f} s", flush=True)
        time.sleep(args.idle)
        roots = {component: [proc.pid] for component, proc in stack._procs.items()}
        roots["flask-monitor"] = [pid] if (pid := stack.flask_pid()) else []
        samples = []
        for i in range(args.samples):
            time.sleep(args.interval if i else 0)
            table_now = process_table()
            samples.append(measure(assign(roots, table_now), table_now))
    # Idle is not flat (re-parsing children, the scheduler's GC un-sharing pages): report the
    # sample with the median total, and the largest total.
    totals = [s["total_pss_mb"] for s in samples]
    median = sorted(samples, key=lambda s: s["total_pss_mb"])[len(samples) // 2]
    print(f"[{name}] total PSS {median['total_pss_mb']:.0f} MB", flush=True)
    return {
        "env": env,
        "ready_s": ready_s,
        "training_runs_s": runs_s,
        **median,
        "sample_totals_pss_mb": totals,
        "max_total_pss_mb": max(totals),
    }


def embedded_report(args) -> Report:
    baselines = {"python": bare_process("pass"), "import airflow": bare_process("import airflow")}
    variants = {name: measure_variant(name, VARIANTS[name], args) for name in args.variants}
    names = list(variants)
    shipped = variants.get("shipped")
    base = (shipped or variants[names[0]])["total_pss_mb"]
    airflow_mb = baselines["import airflow"]["pss_mb"]

    def row(label: str, cell) -> tuple:
        return (label, *(cell(variants[n]) for n in names))

    components = list(dict.fromkeys(c for v in variants.values() for c in v["components"]))
    rows = [
        row(
            c,
            lambda v, c=c: (
                f"{v['components'][c]['pss_mb']:.0f} ({v['components'][c]['processes']})"
            ),
        )
        for c in components
    ]
    rows += [
        row("**total PSS** (median sample)", lambda v: f"**{v['total_pss_mb']:.0f}**"),
        row("**total PSS, largest sample**", lambda v: f"**{v['max_total_pss_mb']:.0f}**"),
        row("total PSS vs shipped", lambda v: f"{v['total_pss_mb'] - base:+.0f}"),
        row("total RSS (shared pages once per process)", lambda v: f"{v['total_rss_mb']:.0f}"),
        row("total USS (private pages only)", lambda v: f"{v['total_uss_mb']:.0f}"),
        row("PSS samples", lambda v: ", ".join(f"{t:.0f}" for t in v["sample_totals_pss_mb"])),
        row(
            "training run trigger->success (s), first / next",
            lambda v: " / ".join(map(str, v["training_runs_s"])),
        ),
        row("boot until DAGs parsed (s)", lambda v: f"{v['ready_s']:.0f}"),
        row(
            "total PSS in bare `import airflow` processes",
            lambda v: f"{v['total_pss_mb'] / airflow_mb:.1f}",
        ),
    ]
    sections = [
        "PSS in MB (processes):\n\n" + table(("component", *names), rows),
        f"Baselines, same run, no stack up: a bare interpreter "
        f"{baselines['python']['pss_mb']:.0f} MB PSS; a process after `import airflow` "
        f"{airflow_mb:.0f} MB PSS.",
    ]
    targets = []
    if shipped:
        worst = shipped["max_total_pss_mb"]
        targets.append(
            Target(
                "shipped total PSS, largest sample, <= 1536 MiB",
                f"{worst:.0f} MiB",
                worst <= TARGET_MB,
            )
        )
        others = [n for n in names if n != "shipped"]
        sections.append(
            "\n".join(
                f"- `{n}` vs `shipped`: {variants[n]['max_total_pss_mb'] - worst:+.0f} MB PSS "
                f"(largest samples); training run after the first "
                f"{variants[n]['training_runs_s'][-1]} s vs {shipped['training_runs_s'][-1]} s."
                for n in others
            )
        )
        detail = [
            (c, p["pid"], f"{p['pss_mb']:.0f}", f"`{p['cmd'][:70]}`")
            for c, v in shipped["components"].items()
            for p in v["detail"]
        ]
        sections.append(
            "Every process of the `shipped` stack:\n\n"
            + table(("component", "pid", "PSS (MB)", "process"), detail)
        )
    return Report(
        name="footprint",
        title="Footprint: embedded stack (SQLite + LocalExecutor) at idle",
        method=__doc__.split("\n\n", 2)[2].split("\n\n``--compose")[0].strip()
        + f"\n\nSchedules off: {', '.join(sorted(NO_SCHEDULES))}; {args.idle:g} s idle, "
        f"{args.samples} samples {args.interval:g} s apart.",
        targets=targets,
        sections=sections,
        data={"baselines": baselines, "variants": variants},
    )


# -- compose mode -----------------------------------------------------------------------------
def container_cgroup(pid: int) -> tuple[list[int], float] | None:
    """Processes and charged memory (MB) of the memory cgroup ``pid`` is in (v2, also the hybrid
    ``unified`` mount, or v1); None for the root cgroup or when it cannot be read."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if path.strip("/") and controllers == "":
            candidates += [
                (Path(r) / path.lstrip("/"), "memory.current")
                for r in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
            ]
        elif path.strip("/") and "memory" in controllers.split(","):
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


def size_mb(text: str) -> float:
    """``docker stats`` sizes ("12.5MiB", "1.2GB") in MiB."""
    units = {
        "KiB": 1 / 1024,
        "MiB": 1,
        "GiB": 1024,
        "kB": 1 / 1024,
        "MB": 1,
        "GB": 1024,
        "B": 2**-20,
    }
    unit = next(u for u in sorted(units, key=len, reverse=True) if text.strip().endswith(u))
    return float(text.strip()[: -len(unit)]) * units[unit]


def compose_report(project: str) -> Report:
    ids = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={project}").split()
    if not ids:
        raise SystemExit(f"no running containers in compose project {project!r}")
    stats = {}
    for line in docker("stats", "--no-stream", "--format", "{{json .}}", *ids).splitlines():
        entry = json.loads(line)
        stats[entry["ID"][:12]] = size_mb(entry["MemUsage"].split("/")[0])
    processes, containers = process_table(), {}
    for c in json.loads(docker("inspect", *ids)):
        service = c["Config"]["Labels"].get("com.docker.compose.service", c["Name"].lstrip("/"))
        init_pid = c["State"]["Pid"]
        pids, charged = container_cgroup(init_pid) or (
            assign({service: [init_pid]}, processes)[service],
            None,
        )
        measured = measure({service: [p for p in pids if p in processes]}, processes)["components"][
            service
        ]
        containers[service] = {
            **measured,
            "cgroup_charge_mb": charged,
            "docker_stats_mb": round(stats.get(c["Id"][:12], 0.0), 1),
        }
    totals = {
        k: round(sum(v[k] or 0 for v in containers.values()), 1)
        for k in ("pss_mb", "uss_mb", "docker_stats_mb", "cgroup_charge_mb")
    }
    airflow = bare_process("import airflow")
    rows = [
        (
            name,
            f"{v['pss_mb']:.0f}",
            f"{v['uss_mb']:.0f}",
            v["processes"],
            f"{v['docker_stats_mb']:.0f}",
            "-" if v["cgroup_charge_mb"] is None else f"{v['cgroup_charge_mb']:.0f}",
        )
        for name, v in sorted(containers.items(), key=lambda kv: -kv[1]["pss_mb"])
    ]
    rows.append(
        (
            "**total**",
            f"**{totals['pss_mb']:.0f}**",
            f"{totals['uss_mb']:.0f}",
            "",
            f"{totals['docker_stats_mb']:.0f}",
            f"{totals['cgroup_charge_mb']:.0f}",
        )
    )
    return Report(
        name="footprint_celery",
        title=f"Footprint: Celery stack (Docker Compose project `{project}`)",
        method="A running stack, measured as found: PSS summed over the processes of each "
        "container's cgroup (host /proc); beside it `docker stats` usage and the cgroup's whole "
        "charge (with page cache). Reported beside the embedded stack's target, with no target "
        "of its own; baseline, same run: a host process after `import airflow`, "
        f"{airflow['pss_mb']:.0f} MB PSS.",
        sections=[
            table(
                (
                    "container",
                    "PSS (MB)",
                    "USS (MB)",
                    "processes",
                    "docker stats (MB)",
                    "cgroup charge (MB)",
                ),
                rows,
            )
        ],
        data={
            "compose_project": project,
            "totals": totals,
            "baseline_import_airflow": airflow,
            "containers": containers,
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--idle", type=float, default=20.0, help="idle seconds before measuring")
    parser.add_argument("--runs", type=int, default=2, help="training runs before idling")
    parser.add_argument("--samples", type=int, default=7, help="PSS samples after the idle wait")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--compose-project", help="measure this running Compose project instead")
    args = parser.parse_args(argv)
    report = compose_report(args.compose_project) if args.compose_project else embedded_report(args)
    publish(report, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
