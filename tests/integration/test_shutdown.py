"""`python -m embedded` stops every process it started, within seconds, whatever it is doing.

The stack runs as a user runs it (its own process, its own ports and home), and the test
watches its process tree independently of the stack's own bookkeeping: every process that
descends from it is recorded (pid and start time) while it runs, so one that was orphaned
before the stop (a task runner in its own process group, a gunicorn a relaunch had just
started) is still known. After the stop none of them may be alive, and none of the stack's
ports may still be listened on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from embedded.stack import REPO_ROOT, Ports
from flask_launcher.process import proc_stat
from testkit.flask_service import listening_holders
from testkit.ports import free_ports
from testkit.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int, start: str) -> bool:
    """The same process (pid and start time) still runs (zombies do not count)."""
    fields = proc_stat(pid)
    return bool(fields) and fields[19] == start and fields[0] not in ("Z", "X")


@dataclass
class Recorder:
    """Every process descending from ``root``, polled until stopped."""

    root: int
    seen: dict[tuple[int, str], bytes] = field(default_factory=dict)
    _done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._done.is_set():
            self.poll()
            time.sleep(0.05)

    def poll(self) -> None:
        parents = {}
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and (fields := proc_stat(int(proc.name))):
                parents[int(proc.name)] = (int(fields[1]), fields[19])
        for pid, (_, start) in parents.items():
            ancestor = pid
            while ancestor in parents and ancestor != self.root:
                ancestor = parents[ancestor][0]
            if ancestor == self.root:  # its title changes as it starts: keep the latest
                self.seen[(pid, start)] = cmdline(pid) or self.seen.get((pid, start), b"")

    def stop(self) -> None:
        self._done.set()

    def matching(self, text: bytes) -> list[int]:
        return [pid for (pid, _), cmd in list(self.seen.items()) if text in cmd]

    def survivors(self) -> dict[int, bytes]:
        return {pid: cmd for (pid, start), cmd in self.seen.items() if alive(pid, start)}


@dataclass
class Run:
    process: subprocess.Popen
    recorder: Recorder
    ports: Ports
    output: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.output)

    def wait_for(self, condition: Callable[[], object], what: str, timeout: float = 600) -> None:
        """Until ``condition`` holds while the stack still runs (a busy machine can take
        minutes to bring it up)."""
        wait_until(lambda: condition() or self.process.poll() is not None, timeout, what)
        assert self.process.poll() is None, f"it exited before {what}:\n{self.text()}"


@pytest.fixture
def run_embedded(tmp_path: Path) -> Iterator:
    runs: list[Run] = []

    def launch() -> Run:
        ports = free_ports()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "embedded",
                "--home",
                str(tmp_path / "airflow"),
                "--model-dir",
                str(tmp_path / "model"),
                *("--start-timeout", "600"),
                *("--api-port", str(ports.api), "--flask-port", str(ports.flask)),
                *("--smtp-port", str(ports.smtp), "--mail-port", str(ports.mail_http)),
                *("--mlflow-port", str(ports.mlflow)),
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # like a terminal's job: signals reach it alone
        )
        run = Run(process, Recorder(process.pid), ports)
        run.recorder.start()
        threading.Thread(target=lambda: run.output.extend(process.stdout), daemon=True).start()
        runs.append(run)
        return run

    yield launch
    for run in runs:  # whatever a failed test left behind
        run.recorder.stop()
        for pid in run.recorder.survivors():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def stop_and_check(run: Run, signum: int) -> None:
    os.kill(run.process.pid, signum)
    try:
        run.process.wait(timeout=60)
    finally:
        run.recorder.poll()
        run.recorder.stop()
    assert run.process.returncode == 128 + signum, run.text()
    time.sleep(0.5)  # a straggler would have had time to start something
    assert run.recorder.survivors() == {}, run.text()
    ports = run.ports
    for port in (ports.api, ports.flask, ports.smtp, ports.mail_http, ports.mlflow):
        assert not listening_holders(port), port
    assert run.text().rstrip().endswith("Stopped."), run.text()


def test_sighup_during_start_up_stops_every_component(run_embedded) -> None:
    run = run_embedded()
    run.wait_for(lambda: len(run.recorder.matching(b"airflow")) >= 4, "Airflow starting")

    stop_and_check(run, signal.SIGHUP)

    assert "SIGHUP received" in run.text()


def test_ctrl_c_during_a_relaunch_and_the_first_run_leaves_nothing(run_embedded) -> None:
    """The watchdog relaunches the Flask monitor as soon as the stack is up, while the CLI
    waits for the DAGs and the first training run: Ctrl-C the moment a gunicorn appears,
    while the task that started it (a task runner in its own process group) still runs."""
    run = run_embedded()
    run.wait_for(lambda: run.recorder.matching(b"gunicorn"), "a relaunch of the Flask monitor")
    tasks = run.recorder.matching(b"airflow worker --")
    assert tasks, "the relaunch task runs"

    stop_and_check(run, signal.SIGINT)

    assert "SIGINT received" in run.text()
    assert "Running. Press Ctrl-C" not in run.text()  # it did not wait for the run to end
