"""Tools from Debian that tests and benchmarks need, installed when missing (root and
apt-get, as on a fresh CI machine), else a clear message saying how."""

from __future__ import annotations

import os
import shutil
import subprocess
import time


def ensure_debian_tool(binary: str, package: str) -> str:
    """The path of ``binary``, installing Debian's ``package`` first when it is missing."""
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(
            f"{binary} is not installed: run `sudo apt-get install -y {package}` "
            "(Debian/Ubuntu), then again"
        )
    print(f"installing {package} from Debian (apt-get install -y {package})", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # The Docker stage may be installing its engine at the same time: wait for apt's locks.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    install = [*apt, "install", "-y", "--no-install-recommends", package]
    if subprocess.run(install, env=env, **quiet).returncode != 0:
        # Another `apt-get update` holding the lists' lock fails this one at once: try again.
        for attempt in range(3):
            if subprocess.run([*apt, "update"], env=env, **quiet).returncode == 0:
                break
            time.sleep(10 * (attempt + 1))
        subprocess.run(install, env=env, check=True, **quiet)
    found = shutil.which(binary)
    if not found:
        raise RuntimeError(f"apt-get installed {package} but {binary} is not on PATH")
    return found
