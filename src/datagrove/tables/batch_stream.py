"""A query's answer as Arrow record batches, for a caller that stores it (a SQL dataflow).

``stream_batches`` starts DuckDB SQL over one or more views in the locked DuckDB of
``datagrove.tables.sandbox`` and returns a ``pyarrow.RecordBatchReader`` that pulls the rows from
DuckDB a batch at a time: memory stays bounded by a batch (and whatever the query itself needs,
within ``memory_limit``), whatever the result's length.

The reader owns the sandbox's connection, its watchdog and the caller's read area: all are
released once the reader is read to the end, fails, or is closed. pyarrow's ``close`` of a reader
made from a Python iterator does nothing (it keeps the iterator until the reader is garbage), so
the reader handed out is that one passed through Arrow's C stream interface, whose ``close``
releases the stream and with it the iterator. The price: an exception crossing that interface
keeps only its text. Our errors therefore cross as ``pyarrow.ArrowInvalid`` with their code in a
tag, and ``batch_error`` turns such an exception back into the ``DatagroveError`` it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import pyarrow as pa

from datagrove.errors import BadRequest, DatagroveError, InvalidSql, QueryLimitExceeded
from datagrove.tables.sandbox import (
    QueryLimits,
    Sandbox,
    Watchdog,
    open_sandbox,
    query_body,
    query_error,
)

#: Rows per batch DuckDB hands over (the caller may cut them smaller).
BATCH_ROWS = 65_536

_ERRORS: dict[str, type[DatagroveError]] = {
    cls.code: cls for cls in (DatagroveError, BadRequest, InvalidSql, QueryLimitExceeded)
}
# "[datagrove:<code>] <message>", as pyarrow renders it after the C stream: "Invalid: <text>" and
# then, for an error raised in Python, ". Detail: Python exception: <traceback>".
_TAGGED = re.compile(r"\[datagrove:([a-z_]+)\] (.*?)(?:\. Detail: Python exception:.*)?\Z", re.DOTALL)


def stream_batches(
    sql: str,
    *,
    views: Mapping[str, str],
    files: Sequence[str],
    limits: QueryLimits,
    on_close: Callable[[], object] = lambda: None,
    batch_rows: int = BATCH_ROWS,
) -> pa.RecordBatchReader:
    """Start one SELECT (DuckDB SQL over ``views``, name -> view SQL) in a locked connection that
    may read only ``files``; its rows come out of the returned reader, at most ``batch_rows`` a
    batch, never an empty one.

    Errors found before the first row (syntax, names, types, a second statement) are raised here as
    ``InvalidSql``; ``on_close`` is then not called (the caller still owns what it would release).
    Errors while reading (a run past ``timeout_seconds``, which counts from now and so includes the
    time the caller spends between batches; more memory than ``memory_limit``; an error of the
    query found as it runs; an engine failure) come out of the reader as ``pyarrow.ArrowInvalid``:
    see ``batch_error``. There is no row limit: the answer is stored, not sent.
    """
    body = query_body(sql)
    sandbox = open_sandbox(views=views, files=files, limits=limits)
    watchdog: Watchdog | None = None
    try:
        sandbox.check(body)
        watchdog = Watchdog(sandbox.con, limits.timeout_seconds)
        try:
            source = sandbox.con.sql(body).to_arrow_reader(batch_rows)
        except Exception as exc:
            raise query_error(exc, files=files, limits=limits, timed_out=watchdog.timed_out) from exc
    except BaseException:
        if watchdog is not None:
            watchdog.stop()
        sandbox.release(clean=False)
        raise
    batches = _Batches(
        sandbox=sandbox, watchdog=watchdog, source=source, files=files, limits=limits, on_close=on_close
    )
    inner = pa.RecordBatchReader.from_batches(source.schema, batches)
    # Through the C stream interface: the only way to a reader whose close() releases ``batches``.
    return pa.RecordBatchReader.from_stream(inner)


def batch_error(exc: BaseException) -> DatagroveError | None:
    """The ``DatagroveError`` that ``exc``, raised by a reader of ``stream_batches``, carries; None
    when it carries none (then it is not ours: a fault of the caller or of pyarrow)."""
    if isinstance(exc, DatagroveError):
        return exc
    found = _TAGGED.search(str(exc))
    if found is None:
        return None
    return _ERRORS.get(found.group(1), DatagroveError)(found.group(2))


def _tagged(error: DatagroveError) -> pa.ArrowInvalid:
    return pa.ArrowInvalid(f"[datagrove:{error.code}] {error.message}")


class _Batches:
    """The iterator behind the reader: DuckDB's batches, with our errors, releasing everything once
    it ends, fails, or is dropped (which closing the reader does). Only a reader read to the end
    hands its sandbox on to a later query (see ``Sandbox.release``)."""

    def __init__(
        self,
        *,
        sandbox: Sandbox,
        watchdog: Watchdog,
        source: pa.RecordBatchReader,
        files: Sequence[str],
        limits: QueryLimits,
        on_close: Callable[[], object],
    ) -> None:
        self._sandbox: Sandbox | None = sandbox
        self._watchdog = watchdog
        self._source = source
        self._files = files
        self._limits = limits
        self._on_close = on_close

    def __iter__(self) -> _Batches:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._sandbox is None:
            raise StopIteration
        try:
            while True:
                batch = self._source.read_next_batch()  # StopIteration at the end
                if batch.num_rows:
                    return batch
        except StopIteration:
            self.release(clean=True)
            raise
        except Exception as exc:
            timed_out = self._watchdog.timed_out
            self.release()
            error = exc if isinstance(exc, DatagroveError) else None
            error = error or query_error(exc, files=self._files, limits=self._limits, timed_out=timed_out)
            raise _tagged(error) from None

    def release(self, *, clean: bool = False) -> None:
        """End the query and give everything back; idempotent. ``clean``: read to the end."""
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is None:
            return
        ended = False
        try:
            try:
                self._source.close()
                self._watchdog.stop()  # before the connection is closed or used again
                ended = clean and not self._watchdog.timed_out
            finally:
                # Before the release: whether the sandbox can serve again depends on its files staying.
                self._on_close()
        finally:
            sandbox.release(clean=ended)

    def __del__(self) -> None:
        self.release()
