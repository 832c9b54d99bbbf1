"""Domo's "product" API (``/api/...``), as the community clients of it send and read it.

Thin adapters over the same services as ``/v1``. Shapes follow ``reference/product-api.md`` where it
differs from the seed document: times of datasources in epoch milliseconds, of streams and
executions in epoch seconds; ids of users in permission lists as strings.
"""

from __future__ import annotations

from datetime import datetime

from datagrove.errors import NotFound

#: The largest id the catalog can hold (BIGINT); a larger one names nothing.
MAX_ID = 2**63 - 1


def epoch_ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def epoch_seconds(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def known_id(value: int, what: str) -> int:
    """``value`` unchanged, or 404 when no id can be that large (or negative)."""
    if not 0 <= value <= MAX_ID:
        raise NotFound(f"{what} {value} does not exist")
    return value
