"""Query-string parameters, parsed with clear 400s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Path

from datagrove.errors import BadRequest
from datagrove.services.query import QueryEngine

# Integer ids in paths: anything outside a signed 64-bit integer is refused with a clear 400 here,
# instead of reaching the database (PostgreSQL rejects such a parameter outright).
MAX_ID = 2**63 - 1


def int_param(query: Mapping[str, str], name: str, default: int) -> int:
    """The integer ``name``; one beyond a signed 64-bit integer is taken as that bound (no page, id
    or time is that far), so that it never reaches the database, which cannot hold it."""
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        return max(-MAX_ID, min(int(value), MAX_ID))
    except ValueError:
        raise BadRequest(f"{name} must be an integer, not {value!r}") from None


def is_digits(text: str) -> bool:
    """Only ASCII digits: ``str.isdigit`` is also true of ``²`` and the like, which ``int`` refuses."""
    return text.isascii() and text.isdigit()


PathId = Annotated[int, Path(ge=0, le=MAX_ID, description="a non-negative 64-bit integer id")]


def version_param(query: Mapping[str, str], body: Mapping[str, object] | None = None) -> str | None:
    """The ``version`` a read asks for (``services/versions.py``): the URL parameter or, for a
    query, ``"version"`` in the JSON body (a string or a number); None for the current data."""
    from_query = query.get("version") or None
    value = body.get("version") if body is not None else None
    if isinstance(value, bool) or not isinstance(value, (str, int, type(None))):
        raise BadRequest("version must be a string (a version id from GET /v1/datasets/{id}/versions)")
    from_body = None if value is None or value == "" else str(value)
    if from_query is not None and from_body is not None and from_query != from_body:
        raise BadRequest(f"version {from_query!r} in the URL and {from_body!r} in the body differ")
    return from_query or from_body


def engine_param(query: Mapping[str, str], body: Mapping[str, object]) -> QueryEngine | None:
    """The ``engine`` a query asks for (``local`` or ``distributed``): the URL parameter or
    ``"engine"`` in the JSON body; None to let the server choose (``services/query.py``)."""
    from_query = query.get("engine") or None
    value = body.get("engine")
    if value is not None and not isinstance(value, str):
        raise BadRequest("engine must be a string: local or distributed")
    from_body = value or None
    if from_query is not None and from_body is not None and from_query.lower() != from_body.lower():
        raise BadRequest(f"engine {from_query!r} in the URL and {from_body!r} in the body differ")
    chosen = from_query or from_body
    return None if chosen is None else QueryEngine.parse(chosen)
