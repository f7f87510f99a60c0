"""Flask monitor fixtures in the style of Flask's tutorial: ``app`` and ``client``.

``app`` reads the real embedded Airflow with the read-only account (a session fixture of
tests/conftest.py). ``make_kinds_app`` reads a local REST API stand-in serving training DAGs
of every model kind (multiclass, regression, binary). ``down_app`` points at a port where
nothing listens: Airflow down, for real, and needs no stack. Other faults come from the small
real servers in testkit.faults (the ``fault_server`` fixture of tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from monitor import create_app
from testkit.airflow_api import AirflowAPI
from testkit.ports import free_port
from testkit.results import KINDS, kept_champion, result

KIND_DAGS = {kind: f"{KINDS[kind]['model']}_training" for kind in KINDS}


@pytest.fixture
def make_app(embedded_stack) -> Callable[..., Flask]:
    """Apps on the real stack; keyword arguments override settings (e.g. CACHE_TTL)."""

    def build(**overrides) -> Flask:
        config = {
            "TESTING": True,
            "AIRFLOW_URL": embedded_stack.api_url,
            "AIRFLOW_USERNAME": embedded_stack.viewer.username,
            "AIRFLOW_PASSWORD": embedded_stack.viewer.password,
            "CACHE_TTL": 0.0,  # every request sees Airflow as it is now
        }
        return create_app(config | overrides)

    return build


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def closed_port_url() -> str:
    """An address where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def make_down_app(closed_port_url: str) -> Callable[..., Flask]:
    def build(**overrides) -> Flask:
        config = {"TESTING": True, "AIRFLOW_URL": closed_port_url, "AIRFLOW_PASSWORD": "x"}
        return create_app(config | overrides)

    return build


@pytest.fixture
def down_app(make_down_app) -> Flask:
    return make_down_app()


@pytest.fixture
def down_client(down_app: Flask) -> FlaskClient:
    return down_app.test_client()


@pytest.fixture
def airflow_api() -> Iterator[AirflowAPI]:
    """A local REST API v2 stand-in (testkit.airflow_api) with three training DAGs of other
    kinds than the ad-click model, and runs of each: the pages for every model kind."""
    api = AirflowAPI()
    for kind, dag_id in KIND_DAGS.items():
        api.add_dag(dag_id, KINDS[kind]["model"])
        api.add_run(dag_id, "failed", error="ValueError: the input file is empty")
        api.add_run(dag_id, "success", result=kept_champion(kind), duration=30.5)
        api.add_run(dag_id, "success", result=result(kind), duration=61.0)
    yield api
    api.stop()


@pytest.fixture
def make_kinds_app(airflow_api: AirflowAPI) -> Callable[..., Flask]:
    """Apps reading the stand-in; ``TRAINING_DAG_ID`` picks the default DAG (the multiclass one)."""

    def build(**overrides) -> Flask:
        config = {
            "TESTING": True,
            "AIRFLOW_URL": airflow_api.url,
            "AIRFLOW_PASSWORD": "x",
            "TRAINING_DAG_ID": KIND_DAGS["multiclass"],
            "CACHE_TTL": 0.0,
        }
        return create_app(config | overrides)

    return build
