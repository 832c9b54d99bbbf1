"""One renderer for every error: Domo's JSON shape ``{status, statusReason, message, toe}``.

Java's SDK parses error bodies with Gson, so an error is always a JSON object. ``toe`` is the
request's trace id, also in the request's log line. Unexpected exceptions are logged with their
traceback and answered with a generic message: no stack trace or secret ever reaches a client.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from datagrove.api.responses import json_response
from datagrove.disk_space import FULL_MESSAGE, is_disk_full
from datagrove.errors import DatagroveError, InsufficientStorage

log = logging.getLogger("datagrove.errors")


def error_response(
    request: Request, status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    body: dict[str, Any] = {
        "status": status,
        "statusReason": HTTPStatus(status).phrase,
        "code": code,
        "message": message,
        "toe": getattr(request.state, "trace_id", ""),
    }
    if details:
        body["details"] = details
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="datagrove"'
    retry_after = (details or {}).get("retryAfterSeconds")
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)  # RFC 9110 §10.2.3: delay-seconds
    return json_response(body, status=status, headers=headers or None)


def render_error(request: Request, exc: DatagroveError) -> Response:
    """Our error as its response; a 5xx is logged with its cause and answered without it."""
    if exc.status >= 500 and not exc.client_safe:
        log.error(
            "internal error",
            exc_info=exc,
            extra={"fields": {"toe": getattr(request.state, "trace_id", "")}},
        )
        return error_response(request, exc.status, exc.code, "internal error")
    return error_response(request, exc.status, exc.code, exc.message, exc.details or None)


def install(app: FastAPI) -> None:
    @app.exception_handler(DatagroveError)
    async def _ours(request: Request, exc: DatagroveError) -> Response:
        return render_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error_response(request, 400, "bad_request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        return error_response(request, exc.status_code, "http_error", message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        if is_disk_full(exc):  # a write path not translated at its boundary: still a clear 507
            return render_error(request, InsufficientStorage(f"the request failed: {FULL_MESSAGE}"))
        log.error(
            "unhandled exception",
            exc_info=exc,
            extra={"fields": {"toe": getattr(request.state, "trace_id", "")}},
        )
        return error_response(request, 500, "internal_error", "internal error")
