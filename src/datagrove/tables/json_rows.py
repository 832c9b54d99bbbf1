"""The JSON text of a query's rows, written by DuckDB itself.

A million-row answer must not pass through Python one value at a time, so DuckDB writes every
row's JSON text: ``rows_json_sql`` wraps a query in a SELECT of one VARCHAR column whose value, for
each row, is a comma followed by the row as a JSON object (``RowForm.OBJECTS``: keys are the
column names in column order, duplicates kept) or array (``RowForm.ARRAYS``).

Values, in both forms (``domo_type`` names the column's Domo type):

* LONG (every integer type) → a JSON integer, all digits.
* DOUBLE → a JSON number that reads back as the same double, always with a fraction or exponent
  (``1.0``, ``1e300``); NaN and ±Infinity → ``null``, since JSON has no literal for them.
* DECIMAL → an exact JSON number: every digit, trailing zeros dropped, at least one fraction
  digit (``1.5``, ``10.0``), as ``datagrove.api.responses.decimal_text`` writes it.
* DATE → ``"YYYY-MM-DD"``; DATETIME → ``"YYYY-MM-DDTHH:MM:SS"``, with ``.ffffff`` only when the
  value has a fraction of a second (timestamps with a time zone are given in UTC).
* BOOLEAN → ``true``/``false``; STRING → a JSON string; NULL of any type → ``null``.
* Lists, structs and maps → their JSON; anything else (TIME, INTERVAL, UUID, BLOB …) → its text.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import orjson
from duckdb.sqltypes import DuckDBPyType

from datagrove.tables.sql_names import quote_literal

_INTEGERS = frozenset(
    {
        "tinyint",
        "smallint",
        "integer",
        "bigint",
        "hugeint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "uhugeint",
        "bignum",
        "varint",
    }
)
_TIMESTAMPS = frozenset(
    {"timestamp", "timestamp_s", "timestamp_ms", "timestamp_ns", "timestamp with time zone"}
)
_NESTED = frozenset({"list", "struct", "map", "array", "union"})


class RowForm(enum.Enum):
    OBJECTS = "objects"  # {"column": value, ...}
    ARRAYS = "arrays"  # [value, ...]


def domo_type(column_type: DuckDBPyType) -> str:
    """The Domo type name of a result column of DuckDB type ``column_type``."""
    kind = column_type.id
    if kind in _INTEGERS:
        return "LONG"
    if kind in ("float", "double"):
        return "DOUBLE"
    if kind == "decimal":
        return "DECIMAL"
    if kind == "date":
        return "DATE"
    if kind in _TIMESTAMPS:
        return "DATETIME"
    if kind == "boolean":
        return "BOOLEAN"
    return "STRING"


def rows_json_sql(source_sql: str, names: Sequence[str], types: Sequence[DuckDBPyType], form: RowForm) -> str:
    """A SELECT of one VARCHAR column: for each row of ``source_sql`` (whose columns are ``names``,
    of DuckDB ``types``), in its order, ``,`` followed by the row's JSON text.

    The columns are renamed by position, so duplicate or odd names in ``source_sql`` are no
    trouble; the names only appear as JSON keys, written here and passed as string literals.
    """
    columns = [f"c{index}" for index in range(len(names))]
    pieces: list[str] = []
    for index, (name, column, column_type) in enumerate(zip(names, columns, types, strict=True)):
        if form is RowForm.OBJECTS:
            # The key as JSON text (orjson escapes what JSON needs), then as a SQL literal.
            pieces.append(quote_literal(("{" if index == 0 else ",") + orjson.dumps(name).decode() + ":"))
        else:
            pieces.append(quote_literal("[" if index == 0 else ","))
        pieces.append(f"coalesce({_value_json(column, column_type)}, 'null')")
    pieces.append(quote_literal("}" if form is RowForm.OBJECTS else "]"))
    # The separator leads each row; whoever joins the rows drops the first one. concat() of many
    # arguments is cheaper than a chain of ||.
    return f"SELECT concat(',', {', '.join(pieces)}) FROM (\n{source_sql}\n) AS q({', '.join(columns)})"


def _value_json(column: str, column_type: DuckDBPyType) -> str:
    """SQL for the JSON text of one value of ``column`` (NULL for a null value)."""
    kind = column_type.id
    if kind == "boolean":
        return f"CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' END"
    if kind in _INTEGERS:
        return f"CAST({column} AS VARCHAR)"
    if kind == "double":
        # to_json writes the shortest text that reads back exactly (and NaN, which JSON lacks).
        return f"CASE WHEN isfinite({column}) THEN to_json({column}) END"
    if kind == "float":
        # A FLOAT's own shortest text (0.1, not the double 0.10000000149011612).
        return f"CASE WHEN isfinite({column}) THEN CAST({column} AS VARCHAR) END"
    if kind == "decimal":
        return _decimal_json(column, dict(column_type.children)["scale"])
    if kind == "date":
        return f"'\"' || CAST({column} AS VARCHAR) || '\"'"
    if kind in _TIMESTAMPS:
        return _timestamp_json(column, kind)
    if kind == "varchar" or kind in _NESTED:
        return f"to_json({column})"
    if kind == "null":
        return "NULL"
    return f"to_json(CAST({column} AS VARCHAR))"


def _decimal_json(column: str, scale: object) -> str:
    text = f"CAST({column} AS VARCHAR)"
    if scale == 0:
        return f"{text} || '.0'"
    # With a scale the text always has a point, so trimming zeros stops there at the latest.
    trimmed = f"rtrim({text}, '0')"
    return f"CASE WHEN suffix({trimmed}, '.') THEN {trimmed} || '0' ELSE {trimmed} END"


def _timestamp_json(column: str, kind: str) -> str:
    if kind == "timestamp with time zone":
        stamp = f"timezone('UTC', {column})"
    elif kind == "timestamp":
        stamp = column
    else:
        stamp = f"CAST({column} AS TIMESTAMP)"
    whole = f"strftime({stamp}, '\"%Y-%m-%dT%H:%M:%S\"')"
    fraction = f"strftime({stamp}, '\"%Y-%m-%dT%H:%M:%S.%f\"')"
    return (
        f"CASE WHEN NOT isfinite({stamp}) THEN '\"' || CAST({stamp} AS VARCHAR) || '\"' "
        f"WHEN microsecond({stamp}) % 1000000 = 0 THEN {whole} ELSE {fraction} END"
    )
