"""What a Celery worker's container holds that it must not: the database password, the API
secret key, a private key. Probed from inside the container, the way code in a task would
look: every process's environment and every readable file where secrets live."""

from __future__ import annotations

import json
import subprocess

# Airflow settings that reach the database or sign something, by name.
FORBIDDEN_SETTINGS = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH",
    "ADCLICK_METADATA_DB_URL",
)
# The stack's secrets a worker must not hold (testkit.envfile's names).
FORBIDDEN_SECRETS = ("POSTGRES_PASSWORD", "AIRFLOW_API_SECRET_KEY")

# Reads the values to look for on stdin; prints {"found": [...]}.
_PROBE = r"""
import json, os, sys

wanted = json.load(sys.stdin)
settings, values = wanted["settings"], wanted["values"]
found = []
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            entries = handle.read().decode(errors="ignore").split("\0")
    except OSError:
        continue
    for entry in entries:
        name, _, value = entry.partition("=")
        if name in wanted["names"]:
            found.append(f"pid {pid}: variable {name}")
        elif any(name.startswith(s) for s in settings):
            found.append(f"pid {pid}: setting {name}")
        elif "postgres" in value.lower():
            found.append(f"pid {pid}: {name} names the database: {value[:80]}")
        for secret, text in values.items():
            if text and text in value:
                found.append(f"pid {pid}: {secret} in {name}")
for top in ("/opt/airflow", "/opt/adclick", "/run", "/tmp", "/home/airflow", "/etc"):
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ("logs", ".local", ".cache", "__pycache__")]
        for name in files:
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as handle:
                    data = handle.read(1 << 20).decode(errors="ignore")
            except OSError:
                continue
            if "PRIVATE KEY-----" in data:
                found.append(f"{path}: a private key")
            for secret, text in values.items():
                if text and text in data:
                    found.append(f"{path}: {secret}")
print(json.dumps({"found": sorted(set(found))}))
"""


def forbidden_in(container: str, secrets: dict[str, str]) -> list[str]:
    """Where, inside ``container``, a setting or value a worker must not have turns up
    (``secrets``: the stack's secrets by name, as testkit.envfile reads them)."""
    wanted = {
        "names": list(FORBIDDEN_SECRETS),
        "settings": list(FORBIDDEN_SETTINGS),
        "values": {name: secrets[name] for name in FORBIDDEN_SECRETS},
    }
    done = subprocess.run(
        ["docker", "exec", "-i", container, "python", "-c", _PROBE],
        input=json.dumps(wanted),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"probe in {container} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])["found"]
