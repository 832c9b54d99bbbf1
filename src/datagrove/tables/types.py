"""Domo column types and their exact counterparts in Iceberg, Arrow and DuckDB.

A dataset's schema is a list of ``Column(name, type)``. Each Domo type maps to one Iceberg type
(what other engines see), one Arrow type (what Parquet files hold) and one DuckDB type (what the
CSV reader and queries use); reading a table's Iceberg schema back gives the same Domo types.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datagrove.errors import BadRequest

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.types import IcebergType

# Domo's DECIMAL has no declared precision; 38/10 keeps cents and ratios exact at any realistic size.
DECIMAL_PRECISION = 38
DECIMAL_SCALE = 10


class ColumnType(enum.StrEnum):
    STRING = "STRING"
    LONG = "LONG"
    DOUBLE = "DOUBLE"
    DECIMAL = "DECIMAL"
    DATE = "DATE"
    DATETIME = "DATETIME"
    BOOLEAN = "BOOLEAN"

    @classmethod
    def parse(cls, value: object) -> ColumnType:
        try:
            return cls(str(value).upper())
        except ValueError:
            names = ", ".join(t.value for t in cls)
            raise BadRequest(f"unknown column type {value!r}; expected one of {names}") from None

    @property
    def iceberg(self) -> IcebergType:
        return _iceberg_types()[self]

    @property
    def arrow(self) -> pa.DataType:
        return _arrow_types()[self]

    @property
    def duckdb(self) -> str:
        return _DUCKDB[self]


# pyarrow and pyiceberg are imported on first use: the CLI's client commands (``upload``) load this
# module through ``domain`` and should not pay for them.
@functools.cache
def _iceberg_types() -> dict[ColumnType, IcebergType]:
    from pyiceberg.types import (
        BooleanType,
        DateType,
        DecimalType,
        DoubleType,
        LongType,
        StringType,
        TimestampType,
    )

    return {
        ColumnType.STRING: StringType(),
        ColumnType.LONG: LongType(),
        ColumnType.DOUBLE: DoubleType(),
        ColumnType.DECIMAL: DecimalType(DECIMAL_PRECISION, DECIMAL_SCALE),
        ColumnType.DATE: DateType(),
        ColumnType.DATETIME: TimestampType(),
        ColumnType.BOOLEAN: BooleanType(),
    }


@functools.cache
def _arrow_types() -> dict[ColumnType, pa.DataType]:
    import pyarrow as pa

    return {
        ColumnType.STRING: pa.string(),
        ColumnType.LONG: pa.int64(),
        ColumnType.DOUBLE: pa.float64(),
        ColumnType.DECIMAL: pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE),
        ColumnType.DATE: pa.date32(),
        ColumnType.DATETIME: pa.timestamp("us"),
        ColumnType.BOOLEAN: pa.bool_(),
    }


_DUCKDB: dict[ColumnType, str] = {
    ColumnType.STRING: "VARCHAR",
    ColumnType.LONG: "BIGINT",
    ColumnType.DOUBLE: "DOUBLE",
    ColumnType.DECIMAL: f"DECIMAL({DECIMAL_PRECISION},{DECIMAL_SCALE})",
    ColumnType.DATE: "DATE",
    ColumnType.DATETIME: "TIMESTAMP",
    ColumnType.BOOLEAN: "BOOLEAN",
}


def column_type_of_iceberg(iceberg_type: IcebergType) -> ColumnType:
    for column_type, candidate in _iceberg_types().items():
        if candidate == iceberg_type:
            return column_type
    raise ValueError(f"no Domo type for Iceberg type {iceberg_type}")


@dataclass(frozen=True)
class Column:
    """One column of a dataset's schema, as Domo writes it: ``{"type": ..., "name": ...}``."""

    name: str
    type: ColumnType


def validate_schema(columns: list[Column]) -> None:
    """Column names must be non-empty and distinct ignoring case, since SQL cannot tell ``a`` from
    ``A`` (an empty schema is allowed: the Java SDK sends one)."""
    seen: set[str] = set()
    for column in columns:
        if column.name == "":
            raise BadRequest("column names must not be empty")
        if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in column.name):
            # NUL and other control characters do not survive every engine and client intact.
            raise BadRequest(f"column name {column.name!r} holds a control character")
        if column.name.lower() in seen:
            raise BadRequest(
                f"column name {column.name!r} appears more than once (names are case-insensitive)"
            )
        seen.add(column.name.lower())
