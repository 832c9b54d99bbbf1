"""Records (JSON objects) into Arrow batches, and text timestamps into DATETIME.

Types: on a first run the first batch decides each column's type (integers LONG, other numbers
DOUBLE, strings STRING, true/false BOOLEAN, objects and arrays their JSON text); later batches
and later runs are built to that schema, so a value of another kind fails loudly rather than
changing a column. A key that was not in the first batch is a new column, which raises
``SchemaChanged``: a dataset's columns are fixed once its first run wrote them.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

import ijson
import pyarrow as pa
import pyarrow.compute as pc

from datagrove.connectors.arrow_schema import to_decimal
from datagrove.connectors.base import SchemaChanged, SourceError
from datagrove.tables.types import Column, ColumnType

# A timestamp that names its offset or UTC; the others are taken as UTC as they are.
_ZONED = r"(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$"


def dataset_schema(columns: Sequence[Column]) -> pa.Schema:
    return pa.schema([pa.field(column.name, column.type.arrow) for column in columns])


def parse_datetimes(batch: pa.RecordBatch, names: Sequence[str]) -> pa.RecordBatch:
    """``batch`` with the text columns ``names`` parsed as DATETIME (UTC microseconds)."""
    arrays = list(batch.columns)
    fields = list(batch.schema)
    for index, field in enumerate(fields):
        if field.name in names:
            arrays[index] = text_to_datetime(arrays[index], field.name)
            fields[index] = pa.field(field.name, pa.timestamp("us"))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def text_to_datetime(array: pa.Array, name: str) -> pa.Array:
    """ISO-8601 text as UTC wall time: values with an offset are converted, others kept.

    Arrow parses either kind but not both in one cast, so the two are parsed apart and merged.
    """
    array = pc.utf8_trim_whitespace(array)
    try:
        zoned = pc.fill_null(pc.match_substring_regex(array, _ZONED), False)
        naive = pc.cast(pc.if_else(zoned, pa.scalar(None, pa.string()), array), pa.timestamp("us"))
        with_zone = pc.cast(pc.if_else(zoned, array, pa.scalar(None, pa.string())), pa.timestamp("us", "UTC"))
        return pc.if_else(zoned, with_zone.cast(pa.timestamp("us")), naive)
    except pa.ArrowInvalid as exc:
        raise SourceError(f"column {name!r} holds a value that is not a date and time: {exc}") from None


def json_records(file: IO[bytes], record_path: str) -> Iterator[Any]:
    """The items of the array at the dot path ``record_path`` ("" = the top-level array)."""
    prefix = f"{record_path}.item" if record_path else "item"
    try:
        yield from ijson.items(file, prefix)
    except ijson.JSONError as exc:
        raise SourceError(f"the file is not valid JSON: {exc}") from None


def json_lines(file: IO[bytes]) -> Iterator[Any]:
    for number, line in enumerate(file, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line, parse_float=decimal.Decimal)
        except ValueError:
            raise SourceError(f"line {number} is not valid JSON") from None


class RecordBatcher:
    """Groups records into batches of ``batch_rows`` with one schema (see the module's note)."""

    def __init__(self, records: Iterable[Any], columns: Sequence[Column], batch_rows: int) -> None:
        self._records = iter(records)
        self._batch_rows = batch_rows
        self._first: list[dict[str, Any]] | None = None
        if columns:
            self.schema = dataset_schema(columns)
        else:
            self._first = self._next_rows()
            self.schema = _infer(self._first)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        rows = self._first if self._first is not None else self._next_rows()
        self._first = None
        while rows:
            yield self._build(rows)
            rows = self._next_rows()

    def _next_rows(self) -> list[dict[str, Any]]:
        rows = []
        for record in self._records:
            if not isinstance(record, dict):
                raise SourceError(f"record {type(record).__name__} is not a JSON object")
            rows.append(record)
            if len(rows) >= self._batch_rows:
                break
        return rows

    def _build(self, rows: list[dict[str, Any]]) -> pa.RecordBatch:
        known = set(self.schema.names)
        for row in rows:
            for key in row:
                if key not in known:
                    raise SchemaChanged(f"the records have a key {key!r} that is not a column of the dataset")
        arrays = [_array([row.get(field.name) for row in rows], field) for field in self.schema]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _infer(rows: list[dict[str, Any]]) -> pa.Schema:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    fields = []
    for name in names:
        values = [_plain(row.get(name)) for row in rows]
        try:
            inferred = pa.array(values).type
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise SourceError(
                f"key {name!r} holds values of different kinds (e.g. numbers and text)"
            ) from None
        fields.append(pa.field(name, _column_type(inferred, name).arrow))
    return pa.schema(fields)


def _column_type(inferred: pa.DataType, name: str) -> ColumnType:
    if pa.types.is_integer(inferred):
        return ColumnType.LONG
    if pa.types.is_floating(inferred):
        return ColumnType.DOUBLE
    if pa.types.is_boolean(inferred):
        return ColumnType.BOOLEAN
    if pa.types.is_string(inferred) or pa.types.is_null(inferred):
        return ColumnType.STRING
    raise SourceError(f"key {name!r} holds values of type {inferred}, which no column type holds")


def _plain(value: Any) -> Any:
    """A JSON value as inference sees it: numbers with a fraction as floats, nested as text."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dict | list):
        return _json_text(value)
    return value


def _array(values: list[Any], field: pa.Field) -> pa.Array:
    target = field.type
    try:
        if pa.types.is_decimal(target):
            numbers = pa.array([decimal.Decimal(v) if isinstance(v, int) else v for v in values])
            return pa.nulls(len(values), target) if pa.types.is_null(numbers.type) else to_decimal(numbers)
        if pa.types.is_floating(target):
            return pa.array([float(v) if isinstance(v, decimal.Decimal) else v for v in values], type=target)
        if pa.types.is_string(target):
            return pa.array([_json_text(v) if isinstance(v, dict | list) else v for v in values], type=target)
        if pa.types.is_timestamp(target):
            return text_to_datetime(pa.array(values, type=pa.string()), field.name)
        if pa.types.is_date(target):
            return pc.cast(pa.array(values, type=pa.string()), target)
        return pa.array(values, type=target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        raise SchemaChanged(
            f"key {field.name!r} holds a value that is not a {_domo_name(target)} like the column"
        ) from None


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def _domo_name(arrow_type: pa.DataType) -> str:
    for column_type in ColumnType:
        if column_type.arrow == arrow_type:
            return column_type.value
    return str(arrow_type)
