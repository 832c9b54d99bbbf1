"""Iceberg field IDs in the Parquet files Datagrove writes.

Iceberg names a column by its field ID, not by its name: a reader that resolves columns by ID
(Daft, Spark, Trino, DuckDB's iceberg extension) finds a column in a data file through the
``field_id`` of the file's Parquet schema. Every data file is therefore written with the IDs of
the table's Iceberg schema (pyarrow's ``PARQUET:field_id`` field metadata, DuckDB's ``FIELD_IDS``
copy option).

A table that never changed schema has IDs 1..n in column order (``positional``), which is what a
writer that is not told otherwise writes. After a schema change the IDs are the table's
(``TableStore.field_ids``): a column whose type changed got a new ID. Files written before field
IDs were written carry none; the table's name mapping (``schema.name-mapping.default``, set by the
first commit) lets readers that apply it (pyiceberg, Spark, Trino) find their columns by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from datagrove.errors import DatagroveError
from datagrove.tables.sql_names import quote_literal
from datagrove.tables.types import Column

if TYPE_CHECKING:
    from pyiceberg.schema import Schema

PARQUET_FIELD_ID = b"PARQUET:field_id"


def positional(columns: Sequence[Column]) -> tuple[int, ...]:
    """The IDs of a table created with ``columns`` and never changed since: 1..n in order."""
    return tuple(range(1, len(columns) + 1))


def _resolved(columns: Sequence[Column], field_ids: Sequence[int] | None) -> Sequence[int]:
    ids = positional(columns) if field_ids is None else field_ids
    if len(ids) != len(columns):
        raise ValueError(f"{len(columns)} columns but {len(ids)} field IDs")
    return ids


def arrow_schema(columns: Sequence[Column], field_ids: Sequence[int] | None = None) -> pa.Schema:
    """The Arrow schema of a data file of ``columns`` (``ColumnType.arrow``), each field carrying
    its Iceberg field ID (``field_ids`` in column order; None: ``positional``)."""
    ids = _resolved(columns, field_ids)
    return pa.schema(
        [
            pa.field(c.name, c.type.arrow, metadata={PARQUET_FIELD_ID: str(i).encode()})
            for c, i in zip(columns, ids, strict=True)
        ]
    )


def duckdb_copy_option(columns: Sequence[Column], field_ids: Sequence[int] | None = None) -> str:
    """The ``FIELD_IDS`` option of a DuckDB ``COPY … TO`` writing ``columns``, with a leading comma
    to append to the other options; empty for no columns (DuckDB refuses an empty struct)."""
    if not columns:
        return ""
    ids = _resolved(columns, field_ids)
    pairs = ", ".join(f"{quote_literal(c.name)}: {int(i)}" for c, i in zip(columns, ids, strict=True))
    return f", FIELD_IDS {{{pairs}}}"


def of_arrow_schema(schema: pa.Schema) -> tuple[int | None, ...]:
    """The field ID of each top-level field of a file's Arrow schema (None where it has none)."""
    found: list[int | None] = []
    for field in schema:
        value = (field.metadata or {}).get(PARQUET_FIELD_ID)
        found.append(int(value) if value is not None else None)
    return tuple(found)


def of_iceberg_schema(schema: Schema, columns: Sequence[Column]) -> tuple[int, ...]:
    """The field IDs of ``columns`` (by name) in a table's Iceberg ``schema``."""
    by_name = {field.name: field.field_id for field in schema.fields}
    missing = [c.name for c in columns if c.name not in by_name]
    if missing:
        raise DatagroveError(f"the table has no column {missing[0]!r}")
    return tuple(by_name[c.name] for c in columns)
