"""Arrow schemas of sources <-> Domo column types of datasets.

On a stream's first run the source's Arrow schema becomes the dataset's (``columns_for``); on every
run each batch is brought to the dataset's exact Arrow schema (``conform``). ``conform`` only makes
casts that keep every value: a narrower integer or float widens, a timestamp moves to UTC
microseconds (fractions below a microsecond are truncated, and a decimal is rounded half-up to 10
places, as the CSV dialect does). Anything else is a changed schema and raises ``SchemaChanged``,
never a silent lossy cast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from datagrove.connectors.base import SchemaChanged, SourceError
from datagrove.errors import BadRequest
from datagrove.tables.types import DECIMAL_SCALE, Column, ColumnType, validate_schema


def column_type_for(arrow_type: pa.DataType) -> ColumnType | None:
    """The Domo type an Arrow type becomes on a first run, or None when it has none."""
    t = arrow_type
    if pa.types.is_dictionary(t):
        return column_type_for(t.value_type)
    if pa.types.is_integer(t):
        return ColumnType.LONG
    if pa.types.is_floating(t):
        return ColumnType.DOUBLE
    if pa.types.is_decimal(t):
        return ColumnType.DECIMAL
    if pa.types.is_boolean(t):
        return ColumnType.BOOLEAN
    if pa.types.is_date(t):
        return ColumnType.DATE
    if pa.types.is_timestamp(t):
        return ColumnType.DATETIME
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_null(t)
    ):
        return ColumnType.STRING
    return None


def columns_for(schema: pa.Schema) -> list[Column]:
    """The dataset columns for a source's schema (a first run). ``SourceError`` names a column
    whose type has no Domo counterpart, or names that a dataset cannot hold."""
    columns = []
    for field in schema:
        column_type = column_type_for(field.type)
        if column_type is None:
            raise SourceError(
                f"column {field.name!r} has type {field.type}, which no dataset column type holds"
            )
        columns.append(Column(field.name, column_type))
    try:
        validate_schema(columns)
    except BadRequest as exc:
        raise SourceError(f"the source's columns cannot be a dataset's: {exc.message}") from exc
    return columns


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    return pa.schema([pa.field(column.name, column.type.arrow) for column in columns])


def conform(batch: pa.RecordBatch, columns: Sequence[Column]) -> pa.RecordBatch:
    """``batch`` with exactly the dataset's Arrow schema: its columns by name (matched exactly) in
    the dataset's order. A missing or extra column, or a type that would need a lossy cast,
    raises ``SchemaChanged`` naming the column."""
    names = batch.schema.names
    if len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise SchemaChanged(f"the source has more than one column named {twice[0]!r}")
    wanted = {column.name for column in columns}
    for name in names:
        if name not in wanted:
            raise SchemaChanged(f"the source has a column {name!r} that the dataset does not have")
    present = set(names)
    for column in columns:
        if column.name not in present:
            raise SchemaChanged(f"the source no longer has the dataset's column {column.name!r}")
    target = arrow_schema(columns)
    arrays = [_conform_array(batch.column(column.name), column) for column in columns]
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _conform_array(array: pa.Array, column: Column) -> pa.Array:
    source = array.type
    if pa.types.is_dictionary(source):
        array = array.dictionary_decode()
        source = array.type
    target = column.type.arrow
    if source == target:
        return array
    if pa.types.is_null(source):
        return pa.nulls(len(array), type=target)
    convert = _converter(source, column.type)
    if convert is None:
        raise SchemaChanged(
            f"column {column.name!r} is {column.type.value} in the dataset, but the source now gives "
            f"{source} ({_domo_name(source)})"
        )
    try:
        return convert(array)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        # A widening that overflows (a uint64 above 2**63, a decimal with more than 28 integer
        # digits) is bad data rather than a changed schema.
        raise SourceError(
            f"column {column.name!r} holds a value that does not fit {column.type.value}"
        ) from exc


def _converter(source: pa.DataType, target: ColumnType) -> Callable[[pa.Array], pa.Array] | None:
    arrow = target.arrow

    def cast(array: pa.Array) -> pa.Array:
        return pc.cast(array, arrow, safe=True)

    if target is ColumnType.LONG and pa.types.is_integer(source):
        return cast
    if target is ColumnType.DOUBLE and (
        pa.types.is_floating(source) or (pa.types.is_integer(source) and source.bit_width <= 32)
    ):
        return cast
    if target is ColumnType.DECIMAL:
        if pa.types.is_integer(source):
            return cast
        if pa.types.is_decimal(source):
            return to_decimal
    if target is ColumnType.DATE and pa.types.is_date(source):
        return cast
    if target is ColumnType.DATETIME and pa.types.is_timestamp(source):
        return _to_utc_microseconds
    if target is ColumnType.STRING and (pa.types.is_large_string(source) or pa.types.is_string_view(source)):
        return cast
    return None


def to_decimal(array: pa.Array) -> pa.Array:
    """A decimal array as DECIMAL: rounded half-up to its scale, then widened (overflow raises)."""
    if array.type.scale > DECIMAL_SCALE:
        array = pc.round(array, ndigits=DECIMAL_SCALE, round_mode="half_up")
    return pc.cast(array, ColumnType.DECIMAL.arrow, safe=True)


def _to_utc_microseconds(array: pa.Array) -> pa.Array:
    # Arrow keeps a zoned timestamp as UTC instants: dropping the zone leaves UTC wall time, which
    # is how DATETIME is stored. Nanoseconds are truncated (safe=False only allows that here:
    # going down from nanoseconds cannot overflow).
    source = array.type
    if source.tz is not None:
        array = array.cast(pa.timestamp(source.unit))
    if source.unit == "ns":
        return pc.cast(array, pa.timestamp("us"), safe=False)
    return pc.cast(array, pa.timestamp("us"), safe=True)


def _domo_name(arrow_type: pa.DataType) -> str:
    column_type = column_type_for(arrow_type)
    return column_type.value if column_type is not None else "no dataset type"
