"""A query's answer as JSON text, streamed from the sandbox a batch of rows at a time.

``stream_query`` starts a user's query in the locked DuckDB of ``datagrove.tables.sandbox`` and
returns a ``JsonRows``: the result's column names and Domo types at once, then the rows' JSON text
(written by DuckDB, see ``datagrove.tables.json_rows``) as bytes, one Arrow batch at a time. Python
never holds more than a batch: each batch's text is one contiguous Arrow buffer, passed on whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa

from datagrove.errors import DatagroveError
from datagrove.tables.json_rows import RowForm, domo_type, rows_json_sql
from datagrove.tables.sandbox import (
    QueryLimits,
    Sandbox,
    Watchdog,
    limited,
    open_sandbox,
    query_body,
    query_error,
    too_many_rows,
)
from datagrove.tables.sql_translate import VIEW_NAME

# Rows per batch: ~1 MB of JSON for a row of a dozen columns. Bigger batches did not go faster,
# and each one is held whole in memory (by DuckDB as Arrow, then by the server while it is sent).
BATCH_ROWS = 8192


class JsonRows:
    """One running query whose rows come out as JSON text.

    ``columns`` are the result's names as the query gives them (duplicates kept) and ``types``
    their Domo types. Iterating (once) yields the rows' JSON texts, in the query's order,
    separated by commas and with no brackets around them, in chunks of whole rows; ``rows`` counts
    the rows yielded so far. Iteration raises ``QueryLimitExceeded`` when the result passes
    ``max_rows`` or the query outlives ``timeout_seconds`` (which counts from the start, so it
    includes time spent waiting for the caller to take the chunks), ``InvalidSql`` for an error of
    the query found while it runs, and ``DatagroveError`` for a failure of the engine.

    The query holds a sandbox until iteration ends or ``close`` is called; call it when giving up
    early (it is idempotent). Only a query read to the end without error hands its sandbox on to a
    later query (see ``Sandbox.release``).
    """

    def __init__(
        self,
        *,
        sandbox: Sandbox,
        watchdog: Watchdog,
        reader: pa.RecordBatchReader,
        columns: list[str],
        types: list[str],
        files: Sequence[str],
        limits: QueryLimits,
    ) -> None:
        self.columns = columns
        self.types = types
        self.rows = 0
        #: Whether the query runs in a sandbox an earlier query used (see ``sandbox.open_sandbox``).
        self.sandbox_reused = sandbox.reused
        self._sandbox: Sandbox | None = sandbox
        self._clean = False
        self._watchdog = watchdog
        self._reader: pa.RecordBatchReader | None = reader
        self._files = files
        self._limits = limits
        self._closing: list[Callable[[], object]] = []

    def __iter__(self) -> Iterator[bytes]:
        reader = self._reader
        if reader is None:
            raise RuntimeError("the rows of a query can be read once")
        first = True
        try:
            for batch in reader:
                if not batch.num_rows:
                    continue
                self.rows += batch.num_rows
                if self.rows > self._limits.max_rows:
                    raise too_many_rows(self._limits)
                text = column_text(batch.column(0))
                yield bytes(text[1:] if first else text)  # the first row has no separator
                first = False
            self._clean = True
        except DatagroveError:
            raise
        except Exception as exc:
            raise query_error(
                exc, files=self._files, limits=self._limits, timed_out=self._watchdog.timed_out
            ) from exc
        finally:
            self.close()

    def on_close(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` when the query ends (e.g. to remove files it reads)."""
        self._closing.append(callback)

    def close(self) -> None:
        """End the query and give its sandbox back; nothing more can be read."""
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is None:
            return
        clean = self._clean
        try:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            self._watchdog.stop()  # before the connection is closed or used again
            clean = clean and not self._watchdog.timed_out
            # The callbacks first: whether the sandbox can serve again depends on its files staying.
            for callback in self._closing:
                callback()
        finally:
            sandbox.release(clean=clean)


def stream_query(
    sql: str, *, view_sql: str, files: Sequence[str], limits: QueryLimits, form: RowForm
) -> JsonRows:
    """Start one SELECT (DuckDB SQL over ``"dataset"``) in a locked connection; its rows come
    out of the returned ``JsonRows`` as JSON ``form`` (objects or arrays).

    The same guards as ``sandbox.run_query`` hold, and errors found before the first row (syntax,
    names, types, a second statement) are raised here, as ``InvalidSql``.
    """
    body = query_body(sql)
    sandbox = open_sandbox(views={VIEW_NAME: view_sql}, files=files, limits=limits)
    con = sandbox.con
    watchdog: Watchdog | None = None
    try:
        # The names come from the query itself: as a subquery, DuckDB would rename duplicates.
        sandbox.check(body)
        watchdog = Watchdog(con, limits.timeout_seconds)
        try:
            result = con.sql(body)
            columns, column_types = list(result.columns), list(result.types)
            select = rows_json_sql(limited(body, limits), columns, column_types, form)
            sandbox.check(select)
            reader = con.sql(select).to_arrow_reader(BATCH_ROWS)
        except DatagroveError:
            raise
        except Exception as exc:
            raise query_error(exc, files=files, limits=limits, timed_out=watchdog.timed_out) from exc
    except BaseException:
        if watchdog is not None:
            watchdog.stop()
        sandbox.release(clean=False)
        raise
    return JsonRows(
        sandbox=sandbox,
        watchdog=watchdog,
        reader=reader,
        columns=columns,
        types=[domo_type(t) for t in column_types],
        files=files,
        limits=limits,
    )


def column_text(column: pa.Array) -> memoryview:
    """The UTF-8 bytes of all of a string column's values, back to back, without copying them."""
    if column.type not in (pa.string(), pa.large_string()):
        # e.g. a string view, whose values need not lie back to back: copy into a layout where they do
        return column_text(column.cast(pa.large_string()))
    _, offsets, data = column.buffers()
    if data is None:  # every value empty
        return memoryview(b"")
    bounds = memoryview(offsets).cast("i" if column.type == pa.string() else "q")
    return memoryview(data)[bounds[column.offset] : bounds[column.offset + len(column)]]
