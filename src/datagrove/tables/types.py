"""Domo column types and their exact counterparts in Iceberg, Arrow and DuckDB.

A dataset's schema is a list of ``Column(name, type)``. Each Domo type maps to one Iceberg type
(what other engines see), one Arrow type (what Parquet files hold) and one DuckDB type (what the
CSV reader and queries use); reading a table's Iceberg schema back gives the same Domo types.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    IcebergType,
    LongType,
    StringType,
    TimestampType,
)

from datagrove.errors import BadRequest

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
        return _ICEBERG[self]

    @property
    def arrow(self) -> pa.DataType:
        return _ARROW[self]

    @property
    def duckdb(self) -> str:
        return _DUCKDB[self]


_ICEBERG: dict[ColumnType, IcebergType] = {
    ColumnType.STRING: StringType(),
    ColumnType.LONG: LongType(),
    ColumnType.DOUBLE: DoubleType(),
    ColumnType.DECIMAL: DecimalType(DECIMAL_PRECISION, DECIMAL_SCALE),
    ColumnType.DATE: DateType(),
    ColumnType.DATETIME: TimestampType(),
    ColumnType.BOOLEAN: BooleanType(),
}

_ARROW: dict[ColumnType, pa.DataType] = {
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
    for column_type, candidate in _ICEBERG.items():
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
        if column.name.lower() in seen:
            raise BadRequest(f"column name {column.name!r} appears more than once (names are case-insensitive)")
        seen.add(column.name.lower())
