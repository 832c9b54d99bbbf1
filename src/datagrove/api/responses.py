"""JSON responses rendered with orjson (datetimes as ISO-8601, decimals as numbers)."""

from __future__ import annotations

import decimal
from typing import Any

import orjson
from starlette.responses import Response


def decimal_text(value: decimal.Decimal) -> str:
    """``value`` as JSON number text, exact, trailing zeros dropped, always with a fraction (``1.0``)
    so that JSON readers see a decimal number, never an integer. No rounding: ``format`` does not
    apply the context's 28-digit precision (``normalize`` would)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text if "." in text else text + ".0"


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal) and value.is_finite():
        # The exact digits as a JSON number (a float would round DECIMAL(38,10) values).
        return orjson.Fragment(decimal_text(value))
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
