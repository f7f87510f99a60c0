"""MLflow's web app with a cap on the size of a request body (artifact uploads above all):
MLflow itself accepts any size. ``serve.py`` has uvicorn load :func:`create_app` instead of
MLflow's app, which it names in ``ADCLICK_MLFLOW_APP``.

A request that declares a longer body gets 413 before MLflow sees any of it; one that
declares no length (chunked) gets 413 once more than the cap has come.
"""

from __future__ import annotations

import importlib
import os

APP_ENV = "ADCLICK_MLFLOW_APP"  # "module:attribute" of MLflow's app
FACTORY_ENV = "ADCLICK_MLFLOW_APP_IS_FACTORY"  # "1": that attribute makes the app
LIMIT_ENV = "ADCLICK_MLFLOW_MAX_UPLOAD_MB"
DEFAULT_LIMIT_MB = 64  # logged models here are kilobytes; a big one still fits


class TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: at most ``limit`` bytes of body per request."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self.refuse(send)
            return
        received, started, exceeded = 0, False, False

        async def counted_receive():
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    raise TooLarge
            return message

        async def guarded_send(message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a body it never got whole: ours replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self.refuse(send)

    async def refuse(self, send) -> None:
        body = f"request body over {self.limit} bytes ({LIMIT_ENV})\n".encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def create_app() -> BodyLimit:
    """MLflow's app behind the cap (a factory, for uvicorn's ``--factory``)."""
    module, _, name = os.environ[APP_ENV].partition(":")
    app = getattr(importlib.import_module(module), name)
    if os.environ.get(FACTORY_ENV) == "1":
        app = app()
    limit_mb = int(os.environ.get(LIMIT_ENV) or DEFAULT_LIMIT_MB)
    return BodyLimit(app, limit_mb * 1024 * 1024)
