"""Bad trigger conf is refused clearly, and no file outside the data root is ever read."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adclick_airflow.settings import TRAINING_DAG_ID as TRAINING
from airflow_rest import AirflowError
from embedded.stack import EmbeddedStack
from testkit.special_files import KINDS, special_file
from testkit.tasks import task_log

pytestmark = pytest.mark.integration


def failed_at_load_data(stack: EmbeddedStack, conf: dict) -> str:
    """Run with ``conf``; assert it failed at load_data without retries; return that task's
    log."""
    admin = stack.client()
    run = admin.wait_for_run(TRAINING, admin.trigger(TRAINING, conf)["dag_run_id"], timeout=300)
    tasks = {t["task_id"]: t for t in admin.task_instances(TRAINING, run["dag_run_id"])}
    assert run["state"] == "failed", tasks
    assert tasks["load_data"]["state"] == "failed"
    assert tasks["load_data"]["try_number"] == 1, "bad conf must not be retried"
    return task_log(admin, TRAINING, run["dag_run_id"], "load_data", 1)


@pytest.mark.parametrize(
    ("conf", "words"),
    [
        ({"min_accuracy": "high"}, ["min_accuracy", "'high' is not of type 'null', 'number'"]),
        ({"gate": "accuracy>=0.9"}, ["gate", "is not of type 'object'"]),
        ({"test_size": 1.5}, ["test_size", "maximum of 1"]),
        ({"random_state": 4.2}, ["random_state", "not of type 'integer'"]),
        ({"data_path": ""}, ["data_path", "should be non-empty"]),
        ({"data_path": ["a.csv"]}, ["data_path", "not of type 'string'"]),
        # Loosening the gate below the DAG's default is off unless the deployment allows it.
        ({"min_accuracy": 0.5}, ["min_accuracy", "less than the minimum of 0.9"]),
        (
            {"gate": {"metric": "accuracy", "min": 0.5}},
            ["gate", "0.5 is less than the minimum of 0.9"],
        ),
        ({"gate": {"metric": "rmse", "max": 10}}, ["gate", "'min' is a required property"]),
        ({"gate": {"metric": "recall", "min": 0.95}}, ["gate", "'accuracy' was expected"]),
        ({"min_improvement": -0.05}, ["min_improvement", "less than the minimum of 0"]),
    ],
)
def test_wrong_types_and_looser_gates_are_refused_at_trigger_time(
    embedded_stack: EmbeddedStack, conf: dict, words: list[str]
) -> None:
    admin = embedded_stack.client()
    before = len(admin.runs(TRAINING, limit=100))

    with pytest.raises(AirflowError, match="HTTP 400") as refused:
        admin.trigger(TRAINING, conf)

    for word in words:
        assert word in str(refused.value), str(refused.value)
    assert len(admin.runs(TRAINING, limit=100)) == before, "nothing may have been queued"


def test_unknown_keys_are_refused_by_name(embedded_stack: EmbeddedStack) -> None:
    log = failed_at_load_data(embedded_stack, {"min_acuracy": 0.95, "data_path": "advertising.csv"})

    assert "unknown trigger conf key(s) min_acuracy" in log
    assert (
        "allowed: approval_timeout, candidates, data_path, gate, min_accuracy, min_improvement, "
        "random_state, require_approval, test_size" in log
    )


@pytest.fixture
def outside_fifo(tmp_path: Path) -> Path:
    """A named pipe outside the data root: opening it to read blocks until a writer comes
    (none ever does), so load_data failing promptly proves it never opened the file."""
    fifo = tmp_path / "secret.csv"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    return fifo


@pytest.fixture
def fifo_opened(outside_fifo: Path) -> Iterator[threading.Event]:
    """Set once any process opens ``outside_fifo`` for reading: a writer waits for one."""
    opened = threading.Event()

    def wait_for_a_reader() -> None:
        with outside_fifo.open("wb"):  # blocks until some process opens it for reading
            opened.set()

    writer = threading.Thread(target=wait_for_a_reader, daemon=True)
    writer.start()
    yield opened
    if not opened.is_set():
        with outside_fifo.open("rb"):  # release the writer
            pass
    writer.join(10)


@pytest.mark.parametrize("form", ["absolute", "relative", "symlink"])
def test_paths_outside_the_data_root_are_refused_unread(
    embedded_stack: EmbeddedStack, outside_fifo: Path, fifo_opened: threading.Event, form: str
) -> None:
    data_dir = embedded_stack.data_dir
    if form == "absolute":
        data_path = str(outside_fifo)
    elif form == "relative":
        data_path = os.path.relpath(outside_fifo, data_dir)
    else:
        link = data_dir / "innocent-looking.csv"
        link.unlink(missing_ok=True)
        link.symlink_to(outside_fifo)
        data_path = link.name

    log = failed_at_load_data(embedded_stack, {"data_path": data_path})

    assert "outside the data root" in log, log[-2000:]
    assert not fifo_opened.is_set(), "the file outside the data root was opened"


@pytest.mark.parametrize("kind", ["fifo", "char_device", "directory", "symlink_loop", "long_name"])
def test_a_data_path_that_is_not_a_regular_file_fails_at_once(
    embedded_stack: EmbeddedStack, tmp_path: Path, kind: str
) -> None:
    """Opened the usual way, a FIFO with no writer or a device would block load_data until its
    timeout; each is refused, naming the path, on the first try."""
    made = special_file(kind, tmp_path)
    path = embedded_stack.data_dir / f"{kind}-{tmp_path.name}.csv"
    if kind == "long_name":
        path = embedded_stack.data_dir / made.name
    elif kind == "symlink_loop":
        path.symlink_to(path.name)
    else:
        made.rename(path)  # a FIFO, device node or directory keeps its kind when moved

    log = failed_at_load_data(embedded_stack, {"data_path": path.name})

    problem = "cannot be resolved" if kind == "symlink_loop" else KINDS[kind]
    assert path.name in log and problem in log, log[-2000:]
