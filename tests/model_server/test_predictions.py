"""The model service under gunicorn over real HTTP: predictions of each fixture model's
champion from JSON and CSV bodies, MLflow's scoring protocol in its three shapes, clear 400s,
404, 413, the Host allowlist, and the Prometheus metrics."""

from __future__ import annotations

import shutil
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from adclick.registry import ModelRegistry
from testkit.flask_service import one_byte_clients

TARGETS = {"iris": "species", "tumours": "diagnosis", "diabetes": "progression"}
LABELS = {"iris": ["setosa", "versicolor", "virginica"], "tumours": ["B", "M"]}


def rows(data: Path, name: str, count: int = 5) -> pd.DataFrame:
    frame = pd.read_csv(data / f"{name}.csv").drop(columns=[TARGETS[name]])
    return frame.dropna().head(count)


def version(deployed: Path, name: str) -> str:
    return ModelRegistry(deployed / "model" / name).current()["version"]


def test_json_records_get_labels_probabilities_and_the_version(
    server: str, data: Path, deployed: Path
) -> None:
    records = rows(data, "iris").to_dict(orient="records")

    answer = requests.post(f"{server}/models/iris/predict", json=records, timeout=10)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "iris" and body["model_version"] == version(deployed, "iris")
    assert len(body["predictions"]) == len(records)
    assert set(body["predictions"]) <= set(LABELS["iris"])
    assert body["labels"] == LABELS["iris"]
    for prediction, probabilities in zip(body["predictions"], body["probabilities"], strict=True):
        assert sum(probabilities.values()) == pytest.approx(1.0)
        assert max(probabilities, key=probabilities.get) == prediction


def test_a_csv_body_with_gaps_and_text_is_scored(server: str, data: Path, deployed: Path) -> None:
    frame = pd.read_csv(data / "tumours.csv").drop(columns=["diagnosis"]).head(40)
    assert frame.isna().any().any()  # the fixture's gaps are in there

    answer = requests.post(
        f"{server}/models/tumours/predict",
        data=frame.to_csv(index=False).encode(),
        headers={"Content-Type": "text/csv"},
        timeout=10,
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == version(deployed, "tumours")
    assert len(body["predictions"]) == 40 and set(body["predictions"]) <= {"B", "M"}


def test_a_regression_answers_numbers_without_probabilities(server: str, data: Path) -> None:
    records = rows(data, "diabetes", 3).to_dict(orient="records")

    body = requests.post(f"{server}/models/diabetes/predict", json=records, timeout=10).json()

    assert all(isinstance(value, float) for value in body["predictions"])
    assert "probabilities" not in body


def test_invocations_take_mlflows_three_shapes_and_agree(server: str, data: Path) -> None:
    frame = rows(data, "iris")
    split = frame.to_dict(orient="split")
    payloads = [
        {"dataframe_split": {"columns": split["columns"], "data": split["data"]}},
        {"dataframe_records": frame.to_dict(orient="records")},
        {"inputs": frame.to_dict(orient="list")},
        {"inputs": frame.to_dict(orient="records")},
    ]
    answers = [
        requests.post(f"{server}/models/iris/invocations", json=payload, timeout=10)
        for payload in payloads
    ]

    assert [a.status_code for a in answers] == [200] * len(payloads), answers[0].text
    predictions = [a.json() for a in answers]
    assert predictions[0] == predictions[1] == predictions[2] == predictions[3]
    assert list(predictions[0]) == ["predictions"]
    assert set(predictions[0]["predictions"]) <= set(LABELS["iris"])


def test_mlflows_own_client_reads_the_predictions(server: str, data: Path) -> None:
    """MLflow's scoring-server client (what ``mlflow models predict`` speaks), with its own
    serialisation of a data frame, against /invocations."""
    pytest.importorskip("mlflow.pyfunc.scoring_server.client")
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    frame = rows(data, "iris")
    host, _, port = server.removeprefix("http://").rpartition(":")
    client = ScoringServerClient(host, int(port))
    client.url_prefix = f"http://{host}:{port}/models/iris"

    answer = client.invoke(frame)

    direct = requests.post(
        f"{server}/models/iris/predict", json=frame.to_dict(orient="records"), timeout=10
    ).json()["predictions"]
    assert list(answer.get_predictions(predictions_format="dataframe").iloc[:, 0]) == direct


def test_a_missing_column_is_a_400_naming_it(server: str, data: Path) -> None:
    records = rows(data, "iris").drop(columns=["petal width (cm)"]).to_dict(orient="records")

    answer = requests.post(f"{server}/models/iris/invocations",
                           json={"dataframe_records": records}, timeout=10)  # fmt: skip

    assert answer.status_code == 400
    assert answer.json()["column"] == "petal width (cm)"
    assert "'petal width (cm)' missing" in answer.json()["error"]


def test_text_in_a_column_of_numbers_is_a_400_naming_column_and_row(
    server: str, data: Path
) -> None:
    frame = rows(data, "iris")
    frame["sepal width (cm)"] = frame["sepal width (cm)"].astype(object)
    frame.iloc[3, frame.columns.get_loc("sepal width (cm)")] = "wide"

    answer = requests.post(
        f"{server}/models/iris/predict", json=frame.to_dict(orient="records"), timeout=10
    )

    assert answer.status_code == 400
    body = answer.json()
    assert body["column"] == "sepal width (cm)" and body["rows"] == [4]
    assert "row 4" in body["error"] and "'wide'" in body["error"]


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"not json", "application/json", "not JSON"),
        (b"[]", "application/json", "non-empty list"),
        (b'{"dataframe_split": {}, "inputs": []}', "application/json", "exactly one of"),
        (b"", "text/csv", "empty"),
    ],
)
def test_bodies_that_are_no_table_get_a_400_saying_why(
    server: str, body: bytes, content_type: str, expected: str
) -> None:
    route = "invocations" if b"inputs" in body else "predict"
    answer = requests.post(f"{server}/models/iris/{route}", data=body,
                           headers={"Content-Type": content_type}, timeout=10)  # fmt: skip

    assert answer.status_code == 400 and expected in answer.json()["error"]


def test_an_unknown_model_is_404_and_a_large_body_413(server: str) -> None:
    missing = requests.post(f"{server}/models/nosuch/predict", json=[{"a": 1}], timeout=10)
    large = requests.post(
        f"{server}/models/iris/predict",
        data=b"a" * (2 * 1024 * 1024),
        headers={"Content-Type": "text/csv"},
        timeout=10,
    )

    assert missing.status_code == 404 and "iris" in missing.json()["error"]
    assert large.status_code == 413 and "MODEL_SERVER_MAX_BODY_BYTES" in large.json()["error"]


def test_health_and_version_name_each_champion(server: str, deployed: Path) -> None:
    health = requests.get(f"{server}/health", timeout=10).json()
    versions = requests.get(f"{server}/version", timeout=10).json()["models"]

    expected = {name: version(deployed, name) for name in TARGETS}
    assert health == {"status": "ok", "models": expected}
    assert {name: info["version"] for name, info in versions.items()} == expected
    assert (
        versions["iris"]["sha256"] == ModelRegistry(deployed / "model" / "iris").current()["sha256"]
    )


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:5002", "1.2.3.4"])
def test_another_host_name_gets_400(server: str, host: str) -> None:
    for method, route in [("get", "/health"), ("post", "/models/iris/predict")]:
        answer = requests.request(method, f"{server}{route}", headers={"Host": host}, timeout=10)

        assert answer.status_code == 400
        assert b"iris" not in answer.content and b"version" not in answer.content


def test_metrics_count_requests_by_model_and_status_and_show_the_version(
    server: str, data: Path, deployed: Path
) -> None:
    route = "/models/<name>/predict"
    requests_ = ("model_server_http_requests_total", {"endpoint": route, "model": "diabetes"})
    latency = ("model_server_request_seconds_count", {"endpoint": route, "model": "diabetes"})
    before = samples(server)
    records = rows(data, "diabetes", 2).to_dict(orient="records")
    for _ in range(3):
        requests.post(f"{server}/models/diabetes/predict", json=records, timeout=10)
    requests.post(f"{server}/models/diabetes/predict", json=[{"age": 1}], timeout=10)

    text = requests.get(f"{server}/metrics", timeout=10).text
    after = samples(server)

    def grew(name: str, labels: dict[str, str]) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew(requests_[0], {**requests_[1], "status": "200"}) == 3
    assert grew(requests_[0], {**requests_[1], "status": "400"}) == 1
    assert grew(*latency) == 4
    served = version(deployed, "diabetes")
    assert f'model_server_model_version_info{{model="diabetes",version="{served}"}} 1.0' in text
    if promtool := shutil.which("promtool"):
        checked = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                                 capture_output=True, timeout=30)  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr


def samples(server: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics by name and labels."""
    text = requests.get(f"{server}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_clients_that_send_one_byte_cannot_hold_it(server: str) -> None:
    """More silent connections than a thread pool would have: /health still answers at once,
    and the silent ones are closed once the header time (keepalive, 5 s) is up."""
    with ExitStack() as stack:
        clients = one_byte_clients(server, 32, stack)
        started = time.monotonic()
        assert requests.get(f"{server}/health", timeout=5).status_code == 200
        assert time.monotonic() - started < 2
        time.sleep(6)
        assert all(client.recv(1) == b"" for client in clients)  # closed by the server
