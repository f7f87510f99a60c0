"""Flask monitor fixtures in the style of Flask's tutorial: ``app`` and ``client``.

``app`` reads the real embedded Airflow with the read-only account; tests that need Airflow
down or a wrong password build their own app with ``make_app``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from embedded.stack import EmbeddedStack, free_port
from monitor import create_app


@pytest.fixture
def make_app(embedded_stack: EmbeddedStack) -> Callable[..., Flask]:
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
    """An address where nothing listens: Airflow down, for real."""
    return f"http://127.0.0.1:{free_port()}"
