"""How rows of one schema become rows of another: what a schema change does to a dataset's rows."""

from __future__ import annotations

from collections.abc import Sequence

from datagrove.tables.sql_names import quote_identifier
from datagrove.tables.types import Column


def conforming_select(old: Sequence[Column], new: Sequence[Column]) -> str:
    """The SELECT list that turns rows of schema ``old`` into schema ``new``: columns matched by
    name, a retyped one cast (values that do not convert become null), a new one null."""
    names = {c.name for c in old}
    selects = []
    for column in new:
        name = quote_identifier(column.name)
        if column.name in names:
            selects.append(f"TRY_CAST({name} AS {column.type.duckdb}) AS {name}")
        else:
            selects.append(f"CAST(NULL AS {column.type.duckdb}) AS {name}")
    return ", ".join(selects) or "1 AS _"
