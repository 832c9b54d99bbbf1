"""Errors of the Iceberg REST catalog in the protocol's own shape.

The protocol's clients read ``{"error": {"message", "type", "code"}}`` (its ``IcebergErrorResponse``)
and pick an exception by status and ``type``: a Domo-shaped body would reach a Spark or PyIceberg
user as an unreadable "unexpected response". The token endpoint answers OAuth2's
``{"error", "error_description"}`` instead (its ``OAuthError``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from datagrove.api.responses import json_response
from datagrove.errors import DatagroveError

log = logging.getLogger("datagrove.errors")

PREFIX = "/iceberg"  # a client's uri is http://host:port/iceberg
TOKENS_PATH = "/v1/oauth/tokens"

# Exception type names the Java and Python clients know (org.apache.iceberg.exceptions).
ICEBERG_TYPES = {
    400: "BadRequestException",
    401: "NotAuthorizedException",
    403: "ForbiddenException",
    404: "NoSuchTableException",
    405: "MethodNotAllowedException",
    409: "CommitFailedException",
    429: "TooManyRequestsException",
    503: "ServiceUnavailableException",
}
TYPE_OF_CODE = {"no_such_namespace": "NoSuchNamespaceException", "no_such_table": "NoSuchTableException"}


def iceberg_error(
    status: int, message: str, kind: str | None = None, retry_after: object | None = None
) -> Response:
    kind = kind or ICEBERG_TYPES.get(status, "InternalServerError")
    headers = {"WWW-Authenticate": 'Bearer realm="datagrove"'} if status == 401 else {}
    if retry_after is not None:  # a limit (429): when to try again
        headers["Retry-After"] = str(retry_after)
    return json_response(
        {"error": {"message": message, "type": kind, "code": status}}, status=status, headers=headers
    )


def oauth_error(status: int, error: str, description: str, retry_after: object | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return json_response({"error": error, "error_description": description}, status=status, headers=headers)


def _rendered(request: Request, exc: Exception) -> Response:
    tokens = request.url.path.endswith(TOKENS_PATH)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}"
        return oauth_error(400, "invalid_request", message) if tokens else iceberg_error(400, message)
    assert isinstance(exc, DatagroveError)
    if exc.status >= 500:
        log.error(
            "internal error", exc_info=exc, extra={"fields": {"toe": getattr(request.state, "trace_id", "")}}
        )
        return iceberg_error(exc.status, "internal error")
    if tokens:
        error = "invalid_client" if exc.status == 401 else "invalid_request"
        return oauth_error(exc.status, error, exc.message, retry_after=exc.details.get("retryAfterSeconds"))
    return iceberg_error(
        exc.status, exc.message, TYPE_OF_CODE.get(exc.code), retry_after=exc.details.get("retryAfterSeconds")
    )


class IcebergRoute(APIRoute):
    """A route whose errors (its dependencies' too: a missing token) come out in the protocol's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except (DatagroveError, RequestValidationError) as exc:
                return _rendered(request, exc)

        return handler
