"""The fast conversion of CSV to Parquet, for files written in the canonical forms of Domo's dialect.

``csv_ingest`` defines the dialect: its DuckDB conversion takes every form real clients send and
names the first problem in a bad file, at about half the speed Arrow converts CSV
(``bench/RESULTS.md``). Most files only use the canonical forms, and for those this module does
the same work with Arrow's CSV reader, compute kernels and Parquet writer. For anything else it
*declines* (answers None) and the caller runs the strict conversion, which takes the rest of the
dialect or reports the problem; this module never judges a file bad. The canonical forms:

* quotes and line ends as ``csv_layout`` defines them;
* LONG ``-?[0-9]+(\\.0+)?``; DOUBLE what Arrow's parser reads, all of which DuckDB's reads alike
  (Arrow's takes no ``_`` between digits); DECIMAL ``-?[0-9]{1,28}(\\.[0-9]{1,10})?``; DATE
  ``YYYY-MM-DD``; DATETIME a date, then optionally ``T`` or a space and ``HH:MM:SS`` with up to six
  fraction digits, no zone; BOOLEAN ``true/false/t/f/yes/no/y/n/1/0`` in any case; STRING anything;
* NULLs as in the dialect: an empty unquoted field or an unquoted ``\\N``, and a quoted ``""``
  in every column but STRING;
* records of at most ``MAX_RECORD_BYTES``: Arrow cannot read a record longer than two of its
  blocks, so a longer one declines.

What makes this safe is a differential property test (``tests/unit/test_csv_canonical.py``): on
any input, a file this module writes holds exactly the rows the strict conversion writes.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from datagrove.tables.csv_layout import scan_layout
from datagrove.tables.field_ids import arrow_schema as field_ids_arrow_schema
from datagrove.tables.parquet_layout import ARROW_PAGE_BYTES, ARROW_PAGE_ROWS, ParquetLayout
from datagrove.tables.types import Column, ColumnType

# The dialect's longest record: DuckDB's default max_line_size, which the strict conversion uses.
# Raising it enlarges every DuckDB read buffer: 16 MiB doubled peak memory and halved throughput.
MAX_RECORD_BYTES = 2_000_000
_BLOCK_BYTES = MAX_RECORD_BYTES // 2
_DICTIONARY_SAMPLE_ROWS = 10_000

_LONG = r"^-?[0-9]+(\.0+)?$"
_DECIMAL = r"^-?[0-9]{1,28}(\.[0-9]{1,10})?$"
_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?)?$"
# DuckDB's BOOLEAN cast, which the dialect uses, takes exactly these words (in any case).
_TRUE_WORDS = ("true", "t", "yes", "y", "1")
_FALSE_WORDS = ("false", "f", "no", "n", "0")


class _Declined(Exception):
    """The file is outside the canonical forms: the strict conversion must decide."""


def convert_canonical(
    source: Path,
    target: Path,
    columns: Sequence[Column],
    *,
    threads: int = 1,
    parquet: ParquetLayout = ParquetLayout(),
    field_ids: Sequence[int] | None = None,
) -> int | None:
    """Write ``source`` to ``target`` as Parquet laid out as ``parquet`` with columns named and typed as
    ``columns`` (``ColumnType.arrow``), rows in file order, and return the row count; or return
    None when the file is outside the canonical forms, leaving whatever ``target`` holds for the
    caller to remove. With ``threads`` of 2 or more, parsing and writing run at the same time.
    The columns carry ``field_ids`` (see ``tables/field_ids.py``; None: 1..n)."""
    layout = scan_layout(source)
    if not columns or not layout.canonical:
        return None
    schema = field_ids_arrow_schema(columns, field_ids)
    try:
        # Arrow's own DOUBLE parser matches the dialect but cannot make a quoted "" NULL.
        typed = (ColumnType.DOUBLE,) if not layout.empty_quoted_fields else ()
        row_groups = _row_groups(source, columns, schema, typed=typed, rows_per_group=parquet.row_group_rows)
        if threads > 1:
            row_groups = _read_ahead(row_groups)
        return _write(row_groups, target, schema, parquet)
    except (_Declined, pa.ArrowException):
        return None
    finally:
        # Arrow's allocator keeps freed pages per thread, and conversions run on whichever worker
        # thread is free: without this every worker keeps its own high-water mark (the stream
        # benchmark's peak server memory went from 555 to 478 MB).
        pa.default_memory_pool().release_unused()


def _row_groups(
    source: Path,
    columns: Sequence[Column],
    schema: pa.Schema,
    *,
    typed: tuple[ColumnType, ...],
    rows_per_group: int,
) -> Iterator[pa.Table]:
    """The file's rows converted to ``schema``, in tables of at least ``rows_per_group`` rows
    (and less than one of Arrow's blocks more), the last one fewer.

    Columns of the ``typed`` types are parsed by Arrow's CSV reader itself, the others read as text
    and converted here. Arrow reads in blocks of a few thousand rows; converting whole row groups
    at once keeps the cost of each compute call (tens of microseconds in Python) small.
    """
    names = [f"c{index}" for index in range(len(columns))]
    reader = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(column_names=names, block_size=_BLOCK_BYTES, use_threads=False),
        # DuckDB skips blank lines unless the file has one column, where a blank line is a NULL.
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=len(columns) > 1),
        convert_options=pacsv.ConvertOptions(
            column_types={
                name: column.type.arrow if column.type in typed else pa.string()
                for name, column in zip(names, columns, strict=True)
            },
            null_values=["", "\\N"],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    converters = [_as_is if column.type in typed else _CONVERTERS[column.type] for column in columns]

    def converted(blocks: list[pa.RecordBatch]) -> pa.Table:
        raw = pa.Table.from_batches(blocks)
        return pa.Table.from_arrays(
            [convert(raw.column(index)) for index, convert in enumerate(converters)], schema=schema
        )

    blocks: list[pa.RecordBatch] = []
    rows = 0
    for block in reader:
        blocks.append(block)
        rows += block.num_rows
        if rows >= rows_per_group:
            yield converted(blocks)
            blocks, rows = [], 0
    if blocks:
        yield converted(blocks)


def _write(row_groups: Iterator[pa.Table], target: Path, schema: pa.Schema, layout: ParquetLayout) -> int:
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for table in row_groups:
            if writer is None:
                writer = arrow_writer(target, schema, layout, first=table)
            writer.write_table(table, row_group_size=max(1, table.num_rows))
            rows += table.num_rows
        if writer is None:  # no rows: the file still carries the schema
            writer = arrow_writer(target, schema, layout, first=None)
    finally:
        if writer is not None:
            writer.close()
    return rows


def arrow_writer(
    target: Path, schema: pa.Schema, layout: ParquetLayout, *, first: pa.Table | None
) -> pq.ParquetWriter:
    """A pyarrow Parquet writer of ``layout`` (its codec, dictionaries and pages; the caller sizes
    the row groups) for a file whose first rows are ``first`` (None: no rows)."""
    if layout.dictionary == "auto":
        dictionary: bool | list[str] = [] if first is None else _dictionary_columns(first)
    else:
        dictionary = layout.dictionary == "all"
    pages = (
        {"max_rows_per_page": ARROW_PAGE_ROWS, "data_page_size": ARROW_PAGE_BYTES}
        if layout.pages == "chunk"
        else {}
    )
    return pq.ParquetWriter(
        target, schema, compression=layout.arrow_compression, use_dictionary=dictionary, **pages
    )


def _dictionary_columns(table: pa.Table) -> list[str]:
    """The columns worth dictionary encoding, judged by the first rows: those that repeat values.

    Encoding a column of mostly distinct values builds a dictionary only to throw it away (a
    fifth of the writer's time on TPC-H lineitem); DuckDB's writer makes the same call.
    """
    sample = table.slice(0, _DICTIONARY_SAMPLE_ROWS)
    return [
        name
        for name in table.column_names
        if pc.count_distinct(sample.column(name), mode="all").as_py() <= sample.num_rows // 2
    ]


def _read_ahead(items: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """``items``, produced by a thread of their own one or two ahead of the consumer.

    Arrow releases the GIL while it parses, converts and writes, so the two stages use two cores.
    """
    handoff: queue.Queue[object] = queue.Queue(maxsize=2)
    done = object()
    stop = threading.Event()  # the consumer has gone: nothing may wait for it any more

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(exc)

    producer = threading.Thread(target=produce, name="csv-read-ahead", daemon=True)
    producer.start()
    try:
        while (item := handoff.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        producer.join()


# --- values -------------------------------------------------------------------------------------


def _all(mask: pa.ChunkedArray) -> bool:
    return pc.all(mask, min_count=0).as_py() is not False  # NULLs (absent values) do not count


def _require(strings: pa.ChunkedArray, pattern: str) -> None:
    if not _all(pc.match_substring_regex(strings, pattern)):
        raise _Declined


def _empty_as_null(strings: pa.ChunkedArray) -> pa.ChunkedArray:
    # An empty unquoted field is already NULL; what is left empty was a quoted "".
    lengths = pc.binary_length(strings)
    if pc.min(lengths).as_py() == 0:
        return pc.if_else(pc.equal(lengths, 0), pa.scalar(None, pa.string()), strings)
    return strings


def _long(strings: pa.ChunkedArray) -> pa.ChunkedArray:
    strings = _empty_as_null(strings)
    if not _all(pc.ascii_is_decimal(strings)):  # the common case needs no pattern
        _require(strings, _LONG)
        strings = pc.replace_substring_regex(strings, r"\.0+$", "")
    return pc.cast(strings, pa.int64())  # an overflow raises, and the file declines


def _double(strings: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.cast(_empty_as_null(strings), pa.float64())


def _decimal(strings: pa.ChunkedArray) -> pa.ChunkedArray:
    strings = _empty_as_null(strings)
    _require(strings, _DECIMAL)
    return pc.cast(strings, ColumnType.DECIMAL.arrow)


def _date(strings: pa.ChunkedArray) -> pa.ChunkedArray:
    strings = _empty_as_null(strings)
    lengths = pc.min_max(pc.binary_length(strings))
    if strings.null_count < len(strings) and (lengths["min"].as_py(), lengths["max"].as_py()) != (10, 10):
        raise _Declined  # Arrow's parser then reads exactly YYYY-MM-DD, and checks the calendar
    return pc.cast(strings, pa.date32())


def _datetime(strings: pa.ChunkedArray) -> pa.ChunkedArray:
    strings = _empty_as_null(strings)
    _require(strings, _DATETIME)
    return pc.cast(strings, pa.timestamp("us"))


def _boolean(strings: pa.ChunkedArray) -> pa.ChunkedArray:
    strings = _empty_as_null(strings)
    words = pc.ascii_lower(strings)
    values = pc.if_else(
        pc.is_in(words, value_set=_word_set(_TRUE_WORDS)),
        True,
        pc.if_else(pc.is_in(words, value_set=_word_set(_FALSE_WORDS)), False, pa.scalar(None, pa.bool_())),
    )
    if values.null_count != strings.null_count:
        raise _Declined
    return values


@functools.cache
def _word_set(words: tuple[str, ...]) -> pa.Array:
    return pa.array(words, type=pa.string())


def _as_is(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return values


_CONVERTERS: dict[ColumnType, Callable[[pa.ChunkedArray], pa.ChunkedArray]] = {
    ColumnType.STRING: _as_is,
    ColumnType.LONG: _long,
    ColumnType.DOUBLE: _double,
    ColumnType.DECIMAL: _decimal,
    ColumnType.DATE: _date,
    ColumnType.DATETIME: _datetime,
    ColumnType.BOOLEAN: _boolean,
}
