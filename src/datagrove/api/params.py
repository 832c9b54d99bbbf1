"""Query-string parameters, parsed with clear 400s."""

from __future__ import annotations

from collections.abc import Mapping

from datagrove.errors import BadRequest


def int_param(query: Mapping[str, str], name: str, default: int) -> int:
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, not {value!r}") from None
