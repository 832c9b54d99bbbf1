"""The ``postgresql`` connector: the rows of a query, streamed with COPY into Arrow.

Speed and memory come from letting both ends work in C: the server writes the rows as CSV
(``COPY (...) TO STDOUT``) and Arrow's streaming CSV reader parses them with the column types
learned beforehand from a ``LIMIT 0`` run of the same query. Python only passes byte chunks
along, so a run holds about one batch at a time whatever the table's size.

Types the server converts on the way out, so that the CSV already holds what Arrow parses:
``timestamptz`` becomes UTC wall time (DATETIME is UTC), ``numeric`` is rounded half-up to the
DECIMAL scale, and every type without a Domo counterpart (json, uuid, arrays, intervals...) is
written as its text form into a STRING column.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import pq, sql

from datagrove.connectors import database
from datagrove.connectors.base import RunContext, SourceError, TransientSourceError
from datagrove.connectors.network import NetworkPolicy
from datagrove.tables.types import DECIMAL_SCALE, ColumnType

# Type OIDs (pg_type) read as they are; the rest is cast to text.
_AS_IS: dict[int, ColumnType] = {
    16: ColumnType.BOOLEAN,  # bool
    20: ColumnType.LONG,  # int8
    21: ColumnType.LONG,  # int2
    23: ColumnType.LONG,  # int4
    26: ColumnType.LONG,  # oid
    700: ColumnType.DOUBLE,  # float4
    701: ColumnType.DOUBLE,  # float8
    1082: ColumnType.DATE,  # date
    1114: ColumnType.DATETIME,  # timestamp
    18: ColumnType.STRING,  # "char"
    19: ColumnType.STRING,  # name
    25: ColumnType.STRING,  # text
    1042: ColumnType.STRING,  # bpchar
    1043: ColumnType.STRING,  # varchar
}
_NUMERIC = 1700
_TIMESTAMPTZ = 1184

# SQLSTATE classes worth a retry: connection exceptions, insufficient resources, operator
# intervention (admin shutdown, cancel), serialization failures and deadlocks.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57", "40")
CONNECT_TIMEOUT_SECONDS = 15
# A path that cannot exist: libpq then reads no password file, silently.
_NO_PASSFILE = os.path.join(os.devnull, "none")
# Bytes Arrow's CSV reader takes from the COPY at a time. Its I/O thread reads up to 32 blocks ahead
# of the batches taken, held as Python bytes outside Arrow's memory pool, so a run whose Parquet
# writing is slower than PostgreSQL grows by 32 blocks: with 8 MiB blocks a lineitem run peaked
# ~300 MB higher than with 1 MiB. ``batches`` joins the small blocks' batches back to ``batch_rows``.
BLOCK_BYTES = 1 << 20


class PostgresqlConnector:
    key: ClassVar[str] = "postgresql"
    name: ClassVar[str] = "PostgreSQL"
    config_items = database.CONFIG_ITEMS
    account_types: ClassVar[frozenset[str]] = frozenset({"postgresql"})

    def check(self, config: Mapping[str, str], *, network: NetworkPolicy) -> None:
        database.check_config(config, network=network)

    def open(self, context: RunContext) -> PostgresqlSource:
        return PostgresqlSource(context)


class PostgresqlSource:
    def __init__(self, context: RunContext) -> None:
        self._context = context
        self._conn_items = database.connection(context.config, context.credentials, default_port=5432)
        query = database.query(context.config)
        cursor_column = context.config.get("cursorColumn", "").strip() or None
        previous = context.state.get("cursor") if cursor_column else None
        self._tracker = database.CursorTracker(cursor_column, previous)
        self._stack = contextlib.ExitStack()
        self._reader: pacsv.CSVStreamingReader | None = None
        self._rows: _CopyRows | None = None
        try:
            self._open(query, cursor_column, previous)
        except BaseException:
            self.close()
            raise

    def _open(self, query: str, cursor_column: str | None, previous: str | None) -> None:
        items = self._conn_items
        # Connect to the address that was checked, so a second DNS answer cannot redirect us.
        address = self._context.network.resolve(items.host)[0]
        with self._errors("could not connect to"):
            conn = psycopg.connect(
                host=items.host,
                hostaddr=address,
                port=items.port,
                dbname=items.database or None,
                user=items.username or None,
                password=items.password,
                # Never fall back to the Datagrove server's own ~/.pgpass for a user's stream.
                passfile=_NO_PASSFILE,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="datagrove",
            )
        self._conn = conn
        self._stack.enter_context(conn)
        with self._errors("the query failed on"):
            conn.read_only = True
            cur = self._stack.enter_context(conn.cursor())
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute("SET DateStyle = 'ISO, YMD'")
            cur.execute("SET IntervalStyle = 'iso_8601'")
            cur.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(sql.SQL(query)))  # type: ignore[arg-type]
            description = cur.description or []
        names = [column.name for column in description]
        if cursor_column is not None and cursor_column not in names:
            raise SourceError(f"the cursor column {cursor_column!r} is not a column of the query")
        types = [_column_type(column.type_code) for column in description]
        self._schema = pa.schema([pa.field(name, t.arrow) for name, t in zip(names, types, strict=True)])
        statement = _copy_statement(query, description, cursor_column, previous)
        with self._errors("the query failed on"):
            self._stack.enter_context(cur.copy(statement))
            self._rows = _CopyRows(conn)
            first = self._rows.read(1)
        if not first or not names:
            return  # no rows: Arrow's reader cannot open an empty stream
        self._rows.unread(first)
        with self._errors("the query failed on"):
            self._reader = pacsv.open_csv(
                self._rows,
                read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_BYTES),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict(zip(names, self._schema.types, strict=True)),
                    # COPY writes NULL unquoted and empty, and '' as "".
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                    true_values=["t"],
                    false_values=["f"],
                ),
            )

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Batches of about ``batch_rows`` rows (each of the dataset's Parquet row groups is one)."""
        if self._reader is None:
            return
        pending: list[pa.RecordBatch] = []
        rows = 0
        while not self._context.cancelled():
            with self._errors("reading the rows failed on"):
                try:
                    block = self._reader.read_next_batch()
                except StopIteration:
                    break
            pending.append(block)
            rows += block.num_rows
            if rows >= self._context.batch_rows:
                yield self._joined(pending)
                pending, rows = [], 0
        if pending and not self._context.cancelled():
            yield self._joined(pending)

    def _joined(self, blocks: list[pa.RecordBatch]) -> pa.RecordBatch:
        batch = blocks[0] if len(blocks) == 1 else pa.concat_batches(blocks)
        self._tracker.see(batch)
        return batch

    def state(self) -> Mapping[str, str]:
        return self._tracker.state()

    def close(self) -> None:
        if self._rows is not None and not self._rows.finished:
            # Left early (cancelled, or an error): closing the connection first ends the COPY on
            # the server at once; psycopg's own way would read every remaining row.
            with contextlib.suppress(Exception):
                self._conn.close()
        with contextlib.suppress(Exception):
            self._stack.close()

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        where = f"{self._conn_items.host}:{self._conn_items.port}"
        try:
            yield
        except psycopg.Error as exc:
            raise _translate(exc, f"{doing} PostgreSQL at {where}", self._conn_items) from None
        except pa.ArrowInvalid as exc:
            text = database.scrub(str(exc), self._conn_items)
            raise SourceError(f"{doing} PostgreSQL at {where}: a value could not be read: {text}") from None


def _column_type(oid: int) -> ColumnType:
    if oid == _NUMERIC:
        return ColumnType.DECIMAL
    if oid == _TIMESTAMPTZ:
        return ColumnType.DATETIME
    return _AS_IS.get(oid, ColumnType.STRING)


def _copy_statement(
    query: str, description: Any, cursor_column: str | None, previous: str | None
) -> sql.Composed:
    outputs = []
    for column in description:
        ref = sql.SQL("q.{}").format(sql.Identifier(column.name))
        if column.type_code == _NUMERIC and (column.scale is None or column.scale > DECIMAL_SCALE):
            # Only where the type allows more places than DECIMAL keeps: rounding costs server time.
            value = sql.SQL("round({}, {})").format(ref, sql.Literal(DECIMAL_SCALE))
        elif column.type_code == _TIMESTAMPTZ:
            value = sql.SQL("({} AT TIME ZONE 'UTC')").format(ref)
        elif column.type_code in _AS_IS or column.type_code == _NUMERIC:
            value = ref
        else:
            value = sql.SQL("{}::text").format(ref)
        outputs.append(sql.SQL("{} AS {}").format(value, sql.Identifier(column.name)))
    select = sql.SQL("SELECT {} FROM ({}) AS q").format(sql.SQL(", ").join(outputs), sql.SQL(query))  # type: ignore[arg-type]
    if cursor_column is not None:
        column = sql.Identifier(cursor_column)
        if previous is not None:
            # An untyped literal takes the column's type, so the text cursor compares as a number,
            # a timestamp or a string alike.
            select = sql.SQL("{} WHERE q.{} > {}").format(select, column, sql.Literal(previous))
        select = sql.SQL("{} ORDER BY q.{}").format(select, column)
    return sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(select)


def _translate(exc: psycopg.Error, where: str, conn: database.Connection) -> SourceError:
    sqlstate = exc.sqlstate or ""
    primary = exc.diag.message_primary if exc.sqlstate else None
    text = database.scrub(primary or str(exc), conn)
    # A refused or lost connection or a timeout has no SQLSTATE; a refused login has one (28...)
    # when the server sent it, else only its message says so.
    lowered = text.lower()
    refused_login = sqlstate.startswith(("28", "3D")) or any(
        hint in lowered for hint in ("authentication failed", "does not exist", "no pg_hba.conf entry")
    )
    if not refused_login and (
        sqlstate.startswith(_TRANSIENT_SQLSTATE_CLASSES)
        or (isinstance(exc, psycopg.OperationalError) and not sqlstate)
    ):
        return TransientSourceError(f"{where}: {text}")
    return SourceError(f"{where}: {text}")


class _CopyRows:
    """The COPY's output as a file Arrow reads, gathered into large blocks.

    PostgreSQL sends one message per row, and psycopg's ``Copy.read`` costs several Python calls
    per row: reading the messages straight from libpq (psycopg's ``pq`` layer, with the same
    non-blocking wait psycopg uses) into one buffer is what keeps a run near ``psql``'s speed.
    psycopg started the COPY (and raised any error in the query); this ends it, taking the final
    result, so that the ``Copy`` block has nothing left to do.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._pgconn = conn.pgconn
        self._poll = select.poll()
        self._poll.register(self._pgconn.socket, select.POLLIN)
        self._buffer = bytearray()
        self.finished = False
        self.closed = False

    def unread(self, data: bytes) -> None:
        self._buffer[:0] = data

    def read(self, size: int = -1) -> bytes:
        buffer = self._buffer
        wanted = size if size >= 0 else sys.maxsize
        get = self._pgconn.get_copy_data
        while len(buffer) < wanted and not self.finished:
            nbytes, data = get(1)
            if nbytes > 0:
                buffer += data
            elif nbytes == 0:  # nothing received yet
                self._poll.poll()
                self._pgconn.consume_input()
            else:
                self._end()
        taken = bytes(buffer[:wanted])
        del buffer[:wanted]
        return taken

    def _end(self) -> None:
        self.finished = True
        error = None
        while (result := self._pgconn.get_result()) is not None:
            if result.status != pq.ExecStatus.COMMAND_OK and error is None:
                error = result
        if error is not None:
            raise psycopg.errors.error_from_result(error, encoding=self._conn.info.encoding)
