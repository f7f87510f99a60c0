"""Every kind of broken CSV in the corpus, through a real (in-process) run of the training DAG's
first task with the DAG's own callbacks: the run fails at load_data, the failure mail names the
problem, the current model is kept byte-identical. (That the tasks after load_data then never
run is tested once for the whole DAG, in test_dag_run.py.)"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from adclick import steps
from embedded.mailcatcher import MailCatcher
from embedded.stack import REPO_ROOT
from testkit.datasets import BROKEN, EXPECTED, SAMPLE_CSV, adclick
from testkit.files import snapshot
from testkit.special_files import KINDS, special_file

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture(scope="module")
def load_data_only():
    """The training DAG cut down to load_data, callbacks and params included: `dag.test()`
    idles a second per task it finds unrunnable, which a whole failed chain would cost."""
    dag = DagBag(dag_folder=REPO_ROOT / "dags").dags["ad_click_training"]
    return dag.partial_subset(task_ids=["load_data"], include_downstream=False)


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory holding a current model, trained once for the whole module."""
    root = tmp_path_factory.mktemp("seed")
    (root / "work").mkdir()
    steps.run(SAMPLE_CSV, root / "model", root / "work", adclick(), run_id="seed")
    return root / "model"


def failure_mail(catcher: MailCatcher) -> str:
    for entry in catcher.store.all():
        if "FAILED at load_data" in str(entry["message"]["Subject"]):
            return html.unescape(entry["message"].get_body(preferencelist=("html",)).get_content())
    subjects = [str(e["message"]["Subject"]) for e in catcher.store.all()]
    raise AssertionError(f"no failure mail for load_data among {subjects}")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_csv_fails_the_run_at_load_data(
    name: str, load_data_only, smtp_catcher: MailCatcher, workspace: Path, trained_model: Path
) -> None:
    shutil.copy(BROKEN / name, workspace / "data" / name)
    model_dir = workspace / "model"
    shutil.rmtree(model_dir)
    shutil.copytree(trained_model, model_dir)
    before = snapshot(model_dir)

    dag_run = load_data_only.test(run_conf={"data_path": name})

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert dag_run.state == "failed" and states == {"load_data": "failed"}, states
    mail = failure_mail(smtp_catcher)
    assert name in mail
    assert str(workspace) not in mail, "the mail shows a server path, not the data root's"
    for word in EXPECTED[name]:
        assert word in mail, f"{word!r} missing from the failure mail"
    assert snapshot(model_dir) == before


# What each refusal says after the path: the data root is resolved first (a symlink loop or a
# NUL byte fails there), then the file is opened (the others fail there).
NOT_A_FILE = {
    "fifo": KINDS["fifo"],
    "char_device": KINDS["char_device"],
    "directory": KINDS["directory"],
    "long_name": KINDS["long_name"],
    "symlink_loop": "cannot be resolved",
    "nul_byte": "is not a usable file name",
}


@pytest.mark.parametrize("kind", sorted(NOT_A_FILE))
def test_a_data_path_that_is_not_a_regular_file_fails_load_data_without_retry(
    kind: str, load_data_only, smtp_catcher: MailCatcher, workspace: Path
) -> None:
    if kind == "nul_byte":
        data_path = "advertising\x00.csv"
    else:
        data_path = special_file(kind, workspace / "data").name

    dag_run = load_data_only.test(run_conf={"data_path": data_path})

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states == {"load_data": "failed"}, states  # up_for_retry if it were retried
    mail = failure_mail(smtp_catcher)
    assert NOT_A_FILE[kind] in mail
    assert (data_path if kind != "nul_byte" else "advertising\\x00.csv") in mail
