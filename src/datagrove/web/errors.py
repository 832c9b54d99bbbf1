"""Errors on web paths: a page with the API's message for a person, the API's JSON for a script.

A request without a live session goes to the sign-in page (``/?next=...``), or gets 401 JSON when
it comes from a script. API paths keep the API's renderers, which this wraps.
"""

from __future__ import annotations

import inspect
import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from datagrove.api.errors import error_response
from datagrove.errors import DatagroveError, TooManyRequests
from datagrove.web.render import page, redirect
from datagrove.web.session import wants_json

log = logging.getLogger("datagrove.errors")


def is_web_path(path: str) -> bool:
    return path == "/" or path == "/ui" or path.startswith("/ui/")


def sign_in_url(request: Request) -> str:
    """The sign-in page, coming back to this page (GET only: a form's post is not repeated)."""
    if request.method != "GET" or request.url.path in ("/", "/ui"):
        return "/"
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/?next=" + quote(target, safe="")


def web_error(
    request: Request, status: int, code: str, message: str, details: dict | None = None
) -> Response:
    """The error as a page (or JSON for a script); a 401 sends a person to the sign-in page."""
    if wants_json(request):
        response = error_response(request, status, code, message, details)
    elif status == 401:
        return redirect(sign_in_url(request))
    else:
        session = getattr(request.state, "web_session", None)
        response = page(
            request,
            "error.html",
            session=session,
            title=HTTPStatus(status).phrase,
            status=status,
            error_status=status,
            error_reason=HTTPStatus(status).phrase,
            message=message,
            trace_id=getattr(request.state, "trace_id", ""),
        )
    if code == TooManyRequests.code and details:
        response.headers["Retry-After"] = str(details.get("retryAfterSeconds", 60))
    return response


def install(app: FastAPI) -> None:
    """Wrap the API's error handlers (``api.errors.install``) so that web paths get pages."""
    api_ours = app.exception_handlers[DatagroveError]
    api_validation = app.exception_handlers[RequestValidationError]
    api_http = app.exception_handlers[StarletteHTTPException]

    @app.exception_handler(DatagroveError)
    async def _ours(request: Request, exc: DatagroveError) -> Response:
        if not is_web_path(request.url.path):
            return await _api(api_ours, request, exc)
        if exc.status >= 500 and not exc.client_safe:
            log.error("internal error", exc_info=exc, extra={"fields": {"toe": request.state.trace_id}})
            return web_error(request, exc.status, exc.code, "internal error")
        return web_error(request, exc.status, exc.code, exc.message, exc.details or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        if not is_web_path(request.url.path):
            return await _api(api_validation, request, exc)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return web_error(request, 400, "bad_request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if not is_web_path(request.url.path):
            return await _api(api_http, request, exc)
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404:
            message = f"there is no page {request.url.path}"
        return web_error(request, exc.status_code, "http_error", message)


async def _api(handler: Any, request: Request, exc: Exception) -> Response:
    """The API's own handler's response (they are coroutines, typed as either)."""
    response = handler(request, exc)
    return await response if inspect.isawaitable(response) else response
