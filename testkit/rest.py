"""The project's REST client with the number of tokens it fetched: token reuse made visible."""

from __future__ import annotations

from typing import Any

from airflow_rest import AirflowClient


class CountingClient(AirflowClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logins = 0

    def _login(self) -> str:
        token = super()._login()
        self.logins += 1
        return token
