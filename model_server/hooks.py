"""What every response gets: a count and a latency by model and route, headers that keep a
browser from doing anything with the answers, and errors as JSON that never show a trace."""

from __future__ import annotations

import time

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError
from werkzeug.wrappers import Response as BaseResponse

from model_server import inputs, views
from model_server.metrics import NO_MODEL

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def install(app: Flask) -> None:
    app.before_request(start)
    app.after_request(finish)
    app.register_error_handler(inputs.BadInput, views.bad_input)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)


def start() -> None:
    g.started = time.perf_counter()


def finish(response: Response) -> Response:
    response.headers.update(HEADERS)
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    model = g.get("model", NO_MODEL)  # set once the name is a model's
    metrics = current_app.extensions["model_server"].metrics
    metrics.requests.labels(model, endpoint, str(response.status_code)).inc()
    if "started" in g:
        metrics.latency.labels(model, endpoint).observe(time.perf_counter() - g.started)
    return response


def http_error(error: HTTPException) -> BaseResponse:
    """404, 405, 413, 503 and friends as ``{"error": ...}``; a Host header outside
    TRUSTED_HOSTS as plain text, naming nothing of the service."""
    response = error.get_response()
    if isinstance(error, SecurityError):
        response.data = b"400 Bad Request: this service does not answer that host name\n"
        response.content_type = "text/plain; charset=utf-8"
        return response
    response.data = jsonify({"error": _message(error)}).get_data()
    response.content_type = "application/json"
    return response


def unexpected_error(error: Exception) -> tuple[Response, int]:
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return jsonify({"error": InternalServerError.description}), InternalServerError.code


def _message(error: HTTPException) -> str:
    if error.code == 413:
        limit = current_app.config["MAX_BODY_BYTES"]
        return f"request body over the limit of {limit} bytes (MODEL_SERVER_MAX_BODY_BYTES)"
    return f"{error.code} {error.name}: {error.description}"
