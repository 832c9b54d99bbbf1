"""Domo's "product" API (``/api/...``), as the community clients of it send and read it.

Thin adapters over the same services as ``/v1``. Shapes follow ``reference/product-api.md`` where it
differs from the seed document: times of datasources in epoch milliseconds, of streams and
executions in epoch seconds; ids of users in permission lists as strings.
"""

from __future__ import annotations

from datetime import datetime


def epoch_ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def epoch_seconds(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())
