"""JSON responses rendered with orjson (datetimes as ISO-8601, decimals as numbers)."""

from __future__ import annotations

import decimal
from typing import Any

import orjson
from starlette.responses import Response


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(body: Any) -> bytes:
    return orjson.dumps(body, default=_default, option=orjson.OPT_NON_STR_KEYS)


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        dumps(body), status_code=status, media_type="application/json;charset=UTF-8", headers=headers
    )


def empty(status: int = 204) -> Response:
    return Response(status_code=status)
