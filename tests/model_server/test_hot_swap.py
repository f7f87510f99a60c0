"""Promotions while clients keep asking: the service switches to the new champion within
5 s with no failed request, and a champion that cannot be loaded leaves the old one serving
and sends one alert mail saying why (real SMTP, the embedded mail catcher)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import requests

from adclick.registry import CURRENT_FILE, MODEL_FILE, VERSIONS_DIR, ModelRegistry
from testkit.mailbox import Mailbox
from testkit.model_server import served, train
from testkit.waiting import wait_until

SWAP_WITHIN_S = 5.0


class Client(threading.Thread):
    """Keeps sending one-row predictions; counts answers by version, and every failure."""

    def __init__(self, url: str, record: dict) -> None:
        super().__init__(daemon=True)
        self.url, self.record = f"{url}/models/iris/predict", record
        self.versions: Counter[str] = Counter()
        self.failures: list[str] = []
        self.first_seen: dict[str, float] = {}  # version -> wall-clock time of its first answer
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                answer = requests.post(self.url, json=[self.record], timeout=10)
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
                continue
            if answer.status_code != 200:
                self.failures.append(f"{answer.status_code} {answer.text[:200]}")
                continue
            version = answer.json()["model_version"]
            self.versions[version] += 1
            self.first_seen.setdefault(version, time.time())


def deploy_iris(folder: Path, data: Path, deployed: Path) -> tuple[Path, Path]:
    """A root of its own with a copy of the iris registry, and a models folder with iris."""
    root = folder / "model"
    shutil.copytree(deployed / "model" / "iris", root / "iris")
    models = folder / "models"
    models.mkdir()
    shutil.copy(deployed / "models" / "iris.py", models / "iris.py")
    return root, models


def first_record(data: Path) -> dict:
    return pd.read_csv(data / "iris.csv").drop(columns=["species"]).iloc[0].to_dict()


def test_a_promotion_is_served_within_5_s_without_a_failed_request(
    data: Path, deployed: Path, tmp_path: Path
) -> None:
    root, models = deploy_iris(tmp_path, data, deployed)
    old = ModelRegistry(root / "iris").current()["version"]
    # Started as a user starts it outside the stacks: python -m adclick serve.
    with served(root, models, tmp_path / "server.log", via_cli=True) as url:
        client = Client(url, first_record(data))
        client.start()
        wait_until(lambda: client.versions[old] >= 20, 30, "answers from the old champion")

        summary = train("iris", data, root / "iris")  # as good as the champion: promoted
        promoted = (root / "iris" / CURRENT_FILE).stat().st_mtime
        new = summary["version"]
        assert summary["promoted"] and new != old

        wait_until(lambda: client.versions[new] >= 20, 30, "answers from the new champion")
        client.done.set()
        client.join(15)

    assert client.failures == []
    swap = client.first_seen[new] - promoted
    assert swap <= SWAP_WITHIN_S, f"the new champion answered {swap:.2f} s after its promotion"


def test_a_champion_that_fails_its_check_keeps_the_old_one_and_mails_once(
    data: Path, deployed: Path, tmp_path: Path, smtp_catcher
) -> None:
    root, models = deploy_iris(tmp_path, data, deployed)
    registry = ModelRegistry(root / "iris")
    old = registry.current()
    mailbox = Mailbox(f"http://127.0.0.1:{smtp_catcher.http_port}")
    settings = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_catcher.smtp_port),
                "ALERT_EMAILS": "ops@example.test"}  # fmt: skip
    with served(root, models, tmp_path / "server.log", **settings) as url:
        client = Client(url, first_record(data))
        client.start()
        wait_until(lambda: client.versions[old["version"]] >= 20, 30, "answers")

        bad = _promote_tampered_copy(registry, old)

        mail = mailbox.wait_for(lambda m: "iris" in m["Subject"], timeout=20)
        time.sleep(3)  # three more polls: no second mail, still the old champion
        client.done.set()
        client.join(15)
        health = requests.get(f"{url}/health", timeout=10).json()
        metrics = requests.get(f"{url}/metrics", timeout=10).text

    assert client.failures == []
    assert set(client.versions) == {old["version"]}
    assert health["models"]["iris"] == old["version"]
    assert [m["Subject"] for m in mailbox.messages()] == [mail["Subject"]]
    assert f"still serving version {old['version']}" in mail["Subject"]
    assert "SHA-256" in mail["Text"] or "sha256" in mail["Text"].lower(), mail["Text"]
    assert bad in mail["Text"]
    assert mail["To"][0]["Address"] == "ops@example.test"
    assert 'model_server_champion_loads_total{model="iris",outcome="rejected"} 1.0' in metrics


def _promote_tampered_copy(registry: ModelRegistry, current: dict) -> str:
    """A new version whose model file is not the bytes current.json's hash names, made
    current the way the registry moves it (one atomic replace)."""
    bad = "20990101T000000.000000Z-tampered"
    source = registry.versions_dir / current["version"]
    shutil.copytree(source, registry.versions_dir / bad)
    with (registry.versions_dir / bad / MODEL_FILE).open("ab") as model:
        model.write(b"\0")
    pointer = {"version": bad, "model": f"{VERSIONS_DIR}/{bad}/{MODEL_FILE}",
               "sha256": current["sha256"], "promoted_at": "2099-01-01T00:00:00+00:00"}  # fmt: skip
    temp = registry.model_dir / f".tmp-{CURRENT_FILE}"
    temp.write_text(json.dumps(pointer))
    os.replace(temp, registry.model_dir / CURRENT_FILE)
    return bad
