"""Query-string parameters, parsed with clear 400s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Path

from datagrove.errors import BadRequest


def int_param(query: Mapping[str, str], name: str, default: int) -> int:
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, not {value!r}") from None


# Integer ids in paths: anything outside a signed 64-bit integer is refused with a clear 400 here,
# instead of reaching the database (PostgreSQL rejects such a parameter outright).
MAX_ID = 2**63 - 1
PathId = Annotated[int, Path(ge=0, le=MAX_ID, description="a non-negative 64-bit integer id")]
