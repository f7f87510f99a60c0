"""What docs/compose.md and SECURITY.md promise about every Compose service, read from
docker-compose.yaml itself (the e2e stage runs the stack; this keeps the promise visible
without an engine)."""

from __future__ import annotations

import re

import pytest
import yaml

from adclick.defaults import MLFLOW_NO_TELEMETRY
from embedded.stack import REPO_ROOT
from testkit.scaleout import WORKER_SECRETS

ONE_SHOT = {"secrets-init", "airflow-init"}
AIRFLOW_COMPONENTS = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "flower",
}


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())
    return compose["services"]


def test_every_long_running_service_has_a_health_check_init_and_a_restart_policy(
    services: dict[str, dict],
) -> None:
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name}: no health check"
        assert service.get("init") is True, f"{name}: no init"
        expected = "no" if name in ONE_SHOT else "unless-stopped"
        assert service.get("restart") == expected, f"{name}: restart {service.get('restart')}"


def _seconds(duration: str) -> float:
    """A Compose duration such as ``600s``, ``10m`` or ``1m30s``, in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def test_a_slow_machine_still_comes_up(services: dict[str, dict]) -> None:
    # At load 20 on 2 cores the api-server needed about 4 minutes; `up --wait` gives up on a
    # service whose checks fail after its start period.
    for name, service in services.items():
        start = _seconds(service["healthcheck"].get("start_period", "0s"))
        assert start >= 600, f"{name}: start period {start:g} s"


def image_variable(value: str) -> tuple[str, str]:
    """``${NAME:-default}`` as (NAME, default); fails on anything else."""
    match = re.fullmatch(r"\$\{([A-Z_]+):-([^}]+)\}", value)
    assert match, f"{value!r} is not ${{VARIABLE:-default}}"
    return match.group(1), match.group(2)


def documented_images() -> dict[str, str]:
    """The upstream images `.env` names (``# VARIABLE=image`` lines) as the defaults."""
    text = (REPO_ROOT / ".env").read_text()
    return dict(re.findall(r"^# ([A-Z_]+_IMAGE)=(\S+)$", text, flags=re.MULTILINE))


def locked_version(package: str) -> str:
    text = (REPO_ROOT / "requirements" / "airflow.lock").read_text()
    match = re.search(rf"^{re.escape(package)}==(\S+)", text, flags=re.MULTILINE)
    assert match, f"{package} is not in requirements/airflow.lock"
    return match.group(1)


def test_every_upstream_image_is_a_variable_with_the_real_default(
    services: dict[str, dict],
) -> None:
    documented = documented_images()
    seen = {}
    for name, service in services.items():
        if "build" in service:
            value = next(iter(service["build"].get("args", {}).values()))
        else:
            value = service.get("image", "")
        variable, default = image_variable(value)
        seen[variable] = default
        repository, _, tag = default.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {default} is not pinned by tag"
        assert not re.search(r"local|standin|adclick", default), f"{name}: {default}: local"
        assert documented.get(variable) == default, f"{name}: .env documents {variable} otherwise"
    assert set(seen) == set(documented), "every documented image variable is used, and only those"
    airflow_tag = seen["AIRFLOW_BASE_IMAGE"].rpartition(":")[2]
    # The slim image: Airflow core alone, so what the lock installs is all there is.
    assert airflow_tag.startswith(f"slim-{locked_version('apache-airflow')}-"), airflow_tag
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert f"ARG AIRFLOW_BASE_IMAGE={seen['AIRFLOW_BASE_IMAGE']}\n" in dockerfile


def test_the_airflow_image_build_fails_on_a_dependency_conflict() -> None:
    """pip exits 0 when an install leaves conflicts behind; `pip check` after it does not."""
    for path in ("Dockerfile", "tests/docker/airflow/Dockerfile"):
        runs = re.findall(r"^RUN (?:.*\\\n)*.*$", (REPO_ROOT / path).read_text(), re.MULTILINE)
        installs = [run for run in runs if "pip install" in run]
        assert installs, path
        for run in installs:
            assert run.rfind("&& pip check") > run.rfind("pip install"), f"{path}: {run}"


def test_ports_are_published_on_loopback_by_default(services: dict[str, dict]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), f"{name}: {port}"


def test_no_service_keeps_a_capability_or_gains_privileges_it_does_not_need(
    services: dict[str, dict],
) -> None:
    needs_root = {"secrets-init", "airflow-init"}  # they hand files and volumes to their users
    for name, service in services.items():
        assert service.get("cap_drop") == ["ALL"], f"{name}: capabilities kept"
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        if name in needs_root:
            assert set(service["cap_add"]) == {"CHOWN", "FOWNER", "DAC_OVERRIDE"}, name
        else:
            assert "cap_add" not in service, f"{name}: {service.get('cap_add')}"


def mounts(service: dict) -> set[str]:
    return {volume.split(":", 1)[0] for volume in service.get("volumes", [])}


@pytest.mark.parametrize(
    ("volume", "readers"),
    [
        ("airflow-auth", {"secrets-init", "airflow-apiserver"}),
        # The superuser's password: Postgres, and the job that settles the roles with it.
        ("postgres-secret", {"secrets-init", "postgres", "airflow-init"}),
        # The key API tokens are signed with: only where tokens are issued.
        ("airflow-signing", {"secrets-init", "airflow-apiserver", "airflow-scheduler"}),
        ("redis-secret", {"secrets-init", "redis"}),
        # Everything Airflow's own components read, the database password included: not the
        # workers, which mount their own subset.
        ("airflow-secrets", AIRFLOW_COMPONENTS - {"airflow-worker"} | {"secrets-init"}),
        ("airflow-worker-secrets", {"secrets-init", "airflow-worker"}),
        ("monitor-secret", {"secrets-init", "flask-monitor"}),
        ("objectstore-secret", {"secrets-init", "objectstore"}),
        ("model-server-secret", {"secrets-init", "model-server"}),
    ],
)
def test_each_secret_volume_is_mounted_only_where_it_is_read(
    services: dict[str, dict], volume: str, readers: set[str]
) -> None:
    assert {name for name, service in services.items() if volume in mounts(service)} == readers


def test_no_secret_is_put_in_a_containers_environment_unless_an_env_file_sets_it(
    services: dict[str, dict],
) -> None:
    """Airflow reads each secret through a command; a value in the environment would be in
    `docker inspect` for anyone who can reach the engine."""
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if key.startswith("AIRFLOW__") and not key.endswith("_CMD"):
                for secret in ("FERNET_KEY", "JWT_SECRET", "SECRET_KEY", "SQL_ALCHEMY_CONN"):
                    assert not key.endswith(secret), f"{name}: {key}"
                assert "BROKER_URL" not in key and "RESULT_BACKEND" not in key, f"{name}: {key}"
            if "PASSWORD" in key or "SECRET" in key or "FERNET" in key:
                # From the env file, a file's path, or the command that reads it.
                reference = ("${", "/", "sh /opt/adclick/bin/secret ")
                assert str(value).startswith(reference), f"{name}: {key}={value}"


def test_front_end_services_reach_neither_the_database_nor_the_broker(
    services: dict[str, dict],
) -> None:
    backend = {
        name for name, service in services.items() if "backend" in service.get("networks", [])
    }
    assert {"postgres", "redis"} <= backend
    assert "flask-monitor" not in backend and "mailpit" not in backend
    assert services["flask-monitor"]["networks"] == ["monitor"]
    assert services["mailpit"]["networks"] == ["mail"]
    assert services["secrets-init"]["network_mode"] == "none"


def test_flower_asks_for_a_login(services: dict[str, dict]) -> None:
    environment = services["flower"]["environment"]
    assert "FLOWER_PASSWORD" in environment["AIRFLOW__CELERY__FLOWER_BASIC_AUTH_CMD"]


def test_no_service_mounts_the_project_packages_as_airflow_plugins(services) -> None:
    """The packages are installed in the image; Airflow's plugin manager imports every module
    of its plugins folder, and would run ``adclick/__main__.py`` in each api-server worker."""
    for name, service in services.items():
        for volume in service.get("volumes", []):
            target = volume.split(":")[1] if isinstance(volume, str) else volume.get("target")
            assert target != "/opt/airflow/plugins", f"{name} mounts {volume}"


def test_the_worker_only_file_shares_nothing_with_the_main_host_but_the_network() -> None:
    """docker-compose.worker.yaml: one Celery worker from the same image, on the default
    queue only, no volume or bind mount, secrets from files, no usable default for any of
    the main host's addresses or the storage roots."""
    text = (REPO_ROOT / "docker-compose.worker.yaml").read_text()
    compose = yaml.safe_load(text)
    (name,) = compose["services"]
    worker = compose["services"][name]
    main = yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())["services"]
    assert worker["image"] == main["airflow-worker"]["image"]
    assert worker["command"] == ["python", "/opt/adclick/bin/celery-worker", "--skip-serve-logs"]
    assert main["airflow-worker"]["command"] == [
        "python",
        "/opt/adclick/bin/celery-worker",
        "--main-host",
        "--skip-serve-logs",
    ]
    assert "volumes" not in worker and "volumes" not in compose
    assert worker["cap_drop"] == ["ALL"] and "no-new-privileges:true" in worker["security_opt"]
    env = worker["environment"]
    for key in ("ADCLICK_DATA_DIR", "ADCLICK_MODEL_DIR", "ADCLICK_ARTIFACT_DIR"):
        assert env[key].startswith(f"${{{key}:?"), key
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(
        "${ADCLICK_MAIN_EXECUTION_API:?"
    )
    # It registers models where the main host's workers do.
    assert env["MLFLOW_TRACKING_URI"].startswith("${ADCLICK_MAIN_MLFLOW:?")
    # Its task logs outlive it in the bucket, as the main host's do.
    assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "True"
    assert env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"].startswith(
        "${ADCLICK_REMOTE_LOG_FOLDER:?"
    )
    for key, value in env.items():
        assert not re.search(r"FERNET_KEY$|JWT_SECRET$|SECRET_KEY$|PASSWORD", key), key
        if key.endswith("_CMD"):
            assert value.startswith("sh /opt/adclick/bin/secret "), key
    targets = {s["target"] for s in worker["secrets"]}
    assert targets == {f"/opt/airflow/secrets/{n}" for n in WORKER_SECRETS}
    assert all(
        s["file"].startswith("${ADCLICK_WORKER_SECRETS_DIR") for s in compose["secrets"].values()
    )


def test_only_the_components_that_use_objects_reach_the_object_store(
    services: dict[str, dict],
) -> None:
    members = {
        name for name, service in services.items() if "objectstore" in service.get("networks", [])
    }
    assert members == {
        "objectstore",
        "airflow-apiserver",  # serves task logs from the bucket
        "airflow-dag-processor",  # DAG callbacks read the run's records
        "airflow-triggerer",  # uploads the logs of deferred tasks
        "airflow-worker",
        "mlflow",  # its artifacts, in a bucket of its own
        "model-server",  # reads the registries, with an identity limited to that
    }
    assert services["objectstore"]["networks"] == ["objectstore"]


def test_no_airflow_container_shares_a_volume_for_data_models_or_artifacts(
    services: dict[str, dict],
) -> None:
    """They are in the object store: a worker elsewhere needs the network only."""
    for name, service in services.items():
        if name.startswith("airflow-"):
            targets = {volume.split(":")[1] for volume in service.get("volumes", [])}
            for root in ("/opt/airflow/data", "/opt/airflow/model", "/opt/airflow/artifacts"):
                assert root not in targets, f"{name} mounts {root}"
            env = service.get("environment") or {}
            for variable in ("ADCLICK_DATA_DIR", "ADCLICK_MODEL_DIR", "ADCLICK_ARTIFACT_DIR"):
                assert env[variable].startswith("s3://"), f"{name}: {variable}={env[variable]}"


def test_no_process_that_loads_mlflow_reports_usage_to_its_makers(services) -> None:
    """The MLflow server and every Airflow container (each worker preloads MLflow, and
    load_model records runs) switch off MLflow's usage reporting, on both compose files."""
    worker_file = yaml.safe_load((REPO_ROOT / "docker-compose.worker.yaml").read_text())
    loading = {
        name: service.get("environment", {})
        for name, service in [*services.items(), *worker_file["services"].items()]
        if name == "mlflow" or "MLFLOW_TRACKING_URI" in service.get("environment", {})
    }
    assert {"mlflow", "airflow-worker", "airflow-scheduler"} <= set(loading)
    for name, env in loading.items():
        for key, value in MLFLOW_NO_TELEMETRY.items():
            assert env.get(key) == value, name


def worker_environments(services: dict[str, dict]) -> dict[str, dict[str, str]]:
    remote = yaml.safe_load((REPO_ROOT / "docker-compose.worker.yaml").read_text())["services"]
    (worker,) = remote.values()
    return {
        "airflow-worker": services["airflow-worker"]["environment"],
        "remote": worker["environment"],
    }


def test_no_worker_holds_the_database_or_anything_that_signs(services: dict[str, dict]) -> None:
    """Code in any task sees the worker's environment and files: task states go through
    Redis, `airflow db clean` runs in the triggerer, and only the api-server and the
    scheduler hold signing material."""
    for name, env in worker_environments(services).items():
        for key, value in env.items():
            assert not re.search(r"SQL_ALCHEMY|SECRET_KEY|JWT|METADATA_DB|POSTGRES", key), (
                name,
                key,
            )
            assert "postgres" not in str(value), (name, key)
        assert env["AIRFLOW__CELERY__RESULT_BACKEND_CMD"].split()[2:4] == [
            "REDIS_PASSWORD",
            "redis://:",
        ]
    assert not {"POSTGRES_PASSWORD", "AIRFLOW_API_SECRET_KEY"} & set(WORKER_SECRETS)
    for name in AIRFLOW_COMPONENTS - {"airflow-worker"}:
        env = services[name]["environment"]
        assert env["AIRFLOW__CELERY__RESULT_BACKEND_CMD"].startswith(
            "sh /opt/adclick/bin/secret REDIS_PASSWORD redis://"
        ), name
    assert "ADCLICK_METADATA_DB_URL_CMD" in services["airflow-triggerer"]["environment"]
