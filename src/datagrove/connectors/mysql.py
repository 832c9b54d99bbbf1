"""The ``mysql`` connector (MySQL and MariaDB): the rows of a query, read unbuffered.

PyMySQL's ``SSCursor`` streams the result from the server as it is fetched, so a run holds one
batch (``batch_rows`` rows) at a time. The session's time zone is UTC, so TIMESTAMP values arrive
as UTC wall time, as DATETIME is stored; DATETIME values are taken as UTC as they are.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import pyarrow as pa
import pymysql
import pymysql.cursors
from pymysql.constants import FIELD_TYPE

from datagrove.connectors import database
from datagrove.connectors.arrow_schema import to_decimal
from datagrove.connectors.base import RunContext, SourceError, TransientSourceError
from datagrove.connectors.network import NetworkPolicy
from datagrove.tables.types import ColumnType

_TYPES: dict[int, ColumnType] = {
    FIELD_TYPE.TINY: ColumnType.LONG,
    FIELD_TYPE.SHORT: ColumnType.LONG,
    FIELD_TYPE.LONG: ColumnType.LONG,
    FIELD_TYPE.INT24: ColumnType.LONG,
    FIELD_TYPE.LONGLONG: ColumnType.LONG,
    FIELD_TYPE.YEAR: ColumnType.LONG,
    FIELD_TYPE.BIT: ColumnType.LONG,
    FIELD_TYPE.FLOAT: ColumnType.DOUBLE,
    FIELD_TYPE.DOUBLE: ColumnType.DOUBLE,
    FIELD_TYPE.DECIMAL: ColumnType.DECIMAL,
    FIELD_TYPE.NEWDECIMAL: ColumnType.DECIMAL,
    FIELD_TYPE.DATE: ColumnType.DATE,
    FIELD_TYPE.NEWDATE: ColumnType.DATE,
    FIELD_TYPE.DATETIME: ColumnType.DATETIME,
    FIELD_TYPE.TIMESTAMP: ColumnType.DATETIME,
}  # everything else (text, blobs, enums, JSON, TIME, geometry) becomes STRING

# Client errors (2xxx) for a refused, lost or timed-out connection, and server errors that pass:
# too many connections, lock wait timeout, deadlock, server shutting down.
_TRANSIENT_CODES = frozenset({2002, 2003, 2005, 2006, 2013, 2055, 1040, 1053, 1205, 1213, 1927})
CONNECT_TIMEOUT_SECONDS = 15


class MysqlConnector:
    key: ClassVar[str] = "mysql"
    name: ClassVar[str] = "MySQL / MariaDB"
    config_items = database.CONFIG_ITEMS
    account_types: ClassVar[frozenset[str]] = frozenset({"mysql"})

    def check(self, config: Mapping[str, str], *, network: NetworkPolicy) -> None:
        database.check_config(config, network=network)

    def open(self, context: RunContext) -> MysqlSource:
        return MysqlSource(context)


class MysqlSource:
    def __init__(self, context: RunContext) -> None:
        self._context = context
        self._conn_items = database.connection(context.config, context.credentials, default_port=3306)
        query = database.query(context.config)
        cursor_column = context.config.get("cursorColumn", "").strip() or None
        previous = context.state.get("cursor") if cursor_column else None
        self._tracker = database.CursorTracker(cursor_column, previous)
        self._conn: pymysql.Connection[Any] | None = None
        self._cursor: Any = None
        self._finished = False
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
            self._conn = pymysql.connect(
                host=address,
                port=items.port,
                user=items.username or None,
                password=items.password,
                database=items.database or None,
                charset="utf8mb4",
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                cursorclass=pymysql.cursors.SSCursor,
                init_command="SET time_zone = '+00:00'",
                autocommit=True,
            )
        statement = f"SELECT * FROM ({query}) AS q"
        if cursor_column is not None:
            column = "q." + _identifier(cursor_column)
            if previous is not None:
                # Comparing with a string literal lets the server convert it to the column's type.
                statement += f" WHERE {column} > {self._conn.escape(previous)}"
            statement += f" ORDER BY {column}"
        with self._errors("the query failed on"):
            self._cursor = self._conn.cursor()
            # No arguments: PyMySQL then leaves any % in the user's query alone.
            self._cursor.execute(statement)
        description = self._cursor.description or ()
        names = [column[0] for column in description]
        if cursor_column is not None and cursor_column not in names:
            raise SourceError(f"the cursor column {cursor_column!r} is not a column of the query")
        types = [_TYPES.get(column[1], ColumnType.STRING) for column in description]
        self._schema = pa.schema([pa.field(name, t.arrow) for name, t in zip(names, types, strict=True)])
        self._builders = [_builder(t) for t in types]

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def batches(self) -> Iterator[pa.RecordBatch]:
        size = self._context.batch_rows
        while not self._context.cancelled():
            with self._errors("reading the rows failed on"):
                rows = self._cursor.fetchmany(size)
            if not rows:
                self._finished = True
                return
            values = list(zip(*rows, strict=True))
            arrays = []
            for field, build, column in zip(self._schema, self._builders, values, strict=True):
                try:
                    arrays.append(build(column))
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
                    raise SourceError(
                        f"column {field.name!r} holds a value that is not a {field.type}"
                    ) from exc
            batch = pa.RecordBatch.from_arrays(arrays, schema=self._schema)
            self._tracker.see(batch)
            yield batch

    def state(self) -> Mapping[str, str]:
        return self._tracker.state()

    def close(self) -> None:
        # Not the cursor's close: an unbuffered cursor reads every remaining row first. Closing
        # the connection makes the server stop; the unbuffered result is then marked done, or
        # PyMySQL's finalizers would try to read the rest from the closed socket.
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            for result in (getattr(self._conn, "_result", None), getattr(self._cursor, "_result", None)):
                if result is not None:
                    result.unbuffered_active = False
            self._conn = None

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        where = f"MySQL at {self._conn_items.host}:{self._conn_items.port}"
        try:
            yield
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            text = exc.args[1] if len(exc.args) > 1 else str(exc)
            message = f"{doing} {where}: {database.scrub(str(text), self._conn_items)}"
            if code in _TRANSIENT_CODES or (code is None and isinstance(exc, pymysql.err.OperationalError)):
                raise TransientSourceError(message) from None
            raise SourceError(message) from None
        except OSError as exc:  # a socket error PyMySQL did not wrap
            raise TransientSourceError(f"{doing} {where}: {exc.strerror or type(exc).__name__}") from None


def _identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _builder(column_type: ColumnType) -> Callable[[Sequence[Any]], pa.Array]:
    arrow = column_type.arrow
    if column_type is ColumnType.DECIMAL:
        return _decimals
    if column_type is ColumnType.STRING:
        return _strings
    if column_type is ColumnType.LONG:
        return lambda values: pa.array(
            [int.from_bytes(v, "big") if isinstance(v, bytes) else v for v in values], type=arrow
        )
    return lambda values: pa.array(values, type=arrow)


def _decimals(values: Sequence[Any]) -> pa.Array:
    # Arrow infers the values' own precision and scale; rounding to DECIMAL's scale comes after.
    array = pa.array(values)
    if pa.types.is_null(array.type):
        return pa.nulls(len(values), type=ColumnType.DECIMAL.arrow)
    return to_decimal(array)


def _strings(values: Sequence[Any]) -> pa.Array:
    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([_text(v) for v in values], type=pa.string())


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return "\\x" + value.hex()  # binary columns as PostgreSQL writes bytea
    if isinstance(value, dt.timedelta):  # TIME
        total = int(value.total_seconds())
        sign, total = ("-", -total) if total < 0 else ("", total)
        text = f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"
        return text + (f".{value.microseconds:06d}" if value.microseconds else "")
    return str(value)
