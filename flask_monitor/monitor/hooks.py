"""What every response gets: security headers, a request count, and plain error pages
that never show a stack trace or anything else from inside the service."""

from __future__ import annotations

from flask import Flask, Response, current_app, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError
from werkzeug.wrappers import Response as BaseResponse

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # No scripts at all; styles only from our own static file.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def install(app: Flask) -> None:
    app.after_request(finish)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)


def finish(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    metrics = current_app.extensions["monitor"].metrics
    metrics.requests.labels(endpoint, str(response.status_code)).inc()
    return response


def http_error(error: HTTPException) -> BaseResponse:
    """404, 405 and friends: Werkzeug's fixed wording, our page, the original headers."""
    response = error.get_response()
    if isinstance(error, SecurityError):
        # A Host header outside TRUSTED_HOSTS: plain text, since the page's links would be
        # built for that host (and Flask builds none for it).
        response.data = b"400 Bad Request: this service does not answer that host name\n"
        response.content_type = "text/plain; charset=utf-8"
        return response
    response.data = render_template("error.html", code=error.code, name=error.name)
    response.content_type = "text/html; charset=utf-8"
    return response


def unexpected_error(error: Exception) -> tuple[str, int]:
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    internal = InternalServerError()
    return render_template("error.html", code=internal.code, name=internal.name), 500
