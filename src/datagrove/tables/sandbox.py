"""The locked DuckDB in which a user's query runs.

A query runs in an in-memory database that can read exactly the dataset's Parquet files,
through one view named ``"dataset"`` (a query over several datasets: one view each), and nothing
else: no other file, no extension, no Python variable, no setting change. Past its memory limit
it spills to a directory of its own, up to a limit, where the limits allow it; a query that needs
more memory than that fails alone with ``QueryLimitExceeded``.
Such a locked database is used by one query at a time and may serve later queries that would
see exactly the same (``datagrove.tables.sandbox_pool`` says when that is safe).
``run_query`` adds the row and time limits and turns DuckDB's errors into ours;
``datagrove.tables.json_stream`` does the same for answers streamed as JSON, and
``datagrove.tables.batch_stream`` for answers handed on as Arrow batches, with the pieces shared
here. This lock is the security boundary; the checks of
``datagrove.tables.sql_translate`` come in front of it for friendlier errors.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from datagrove.errors import DatagroveError, InvalidSql, QueryLimitExceeded
from datagrove.tables.sandbox_pool import IDLE, SPARES, SPILL, SandboxIdentity
from datagrove.tables.sql_names import quote_identifier
from datagrove.tables.sql_translate import VIEW_NAME

# How often the watchdog repeats an interrupt that DuckDB may have missed (one sent between
# statements, or before execution started, is not remembered).
_REINTERRUPT_SECONDS = 0.05


@dataclass(frozen=True)
class QueryLimits:
    """Bounds on one query.

    ``timeout_seconds`` bounds planning, running and fetching; ``max_rows`` the result's length.
    ``threads`` and ``memory_limit`` (a DuckDB size such as ``"2GB"``) bound the engine. With a
    ``spill_root`` directory, an operator that can (sorts, joins, aggregates) spills past the memory
    limit to a directory of the database's own under it, up to ``spill_limit`` (a DuckDB size);
    without one a query that needs more memory fails instead of spilling. Memory that cannot be
    spilled (a huge string or list, a result held whole) always fails past the limit.
    """

    timeout_seconds: float
    max_rows: int
    threads: int = 2
    memory_limit: str = "2GB"
    spill_root: str | None = None
    spill_limit: str = "10GB"


def locked_connection(
    *, view_sql: str, files: Sequence[str], limits: QueryLimits
) -> duckdb.DuckDBPyConnection:
    """Open a fresh in-memory DuckDB holding ``CREATE VIEW "dataset" AS <view_sql>``, then lock it
    (see ``locked_views``)."""
    return locked_views(views={VIEW_NAME: view_sql}, files=files, limits=limits)


def locked_views(
    *, views: Mapping[str, str], files: Sequence[str], limits: QueryLimits
) -> duckdb.DuckDBPyConnection:
    """Open a fresh in-memory DuckDB holding ``CREATE VIEW "<name>" AS <sql>`` for each of ``views``,
    then lock it.

    ``files`` are the absolute paths that the views read; they are the only files the
    connection can ever open. The database is always a new one (queries take theirs from
    ``open_sandbox``, which may hand out a used one). Once this returns, no setting can change (not even by a statement
    the caller runs), extensions cannot be installed or loaded, Python variables are not visible
    as tables, and nothing is written to disk but what DuckDB spills (``QueryLimits``). The
    caller owns the connection and must close it (``SPILL.close``, which also removes its spill
    directory). A failure to build the view raises ``DatagroveError``: that is a
    fault of the caller or the storage, never of the user's query.
    """
    con = SPARES.take()
    try:
        # Order matters. temp_directory can only change while external access is on, and
        # lock_configuration must come last: after it, no SET works. allowed_paths must be in place
        # before external access goes off, or the view could not be bound.
        for statement in (
            # Otherwise the Python client resolves an unknown table name to a variable in scope.
            "SET python_enable_replacements = false",
            "SET autoinstall_known_extensions = false",
            "SET autoload_known_extensions = false",
            "SET allow_community_extensions = false",
            "SET allow_persistent_secrets = false",
            "SET enable_progress_bar = false",
        ):
            con.execute(statement)
        if limits.spill_root is None:
            # An in-memory database spills to ./.tmp by default; with no directory it cannot write.
            con.execute("SET temp_directory = ''")
        else:
            # Its own directory, made by DuckDB at the first spill; the query reads no file there.
            con.execute("SET temp_directory = ?", [SPILL.assign(con, limits.spill_root)])
            con.execute("SET max_temp_directory_size = ?", [limits.spill_limit])
        con.execute("SET threads = ?", [limits.threads])
        con.execute("SET memory_limit = ?", [limits.memory_limit])
        con.execute("SET allowed_paths = ?", [list(files)])
        con.execute("SET enable_external_access = false")
        for name, view_sql in views.items():
            con.execute(f"CREATE VIEW {quote_identifier(name)} AS {view_sql}")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        SPILL.close(con)
        raise DatagroveError("could not open the dataset for querying") from exc
    except BaseException:
        SPILL.close(con)
        raise
    return con


# Functions whose call leaves something in the database for a later query to see (the random
# seed; sequences, logs, external resources), or that run SQL given as text, which is then not
# screened here. A query naming one (even in a string or as a column name) never hands its
# database on. Settings cannot change (the configuration is locked) and a single SELECT cannot
# create, attach, prepare or set anything: ``require_one_select`` and ``query()`` see to that.
_LEAVES_STATE = re.compile(
    r"(?<![a-z0-9_$])(setseed|setval|nextval|currval|query|query_table|json_execute_serialized_sql"
    r"|write_log|truncate_duckdb_logs|[a-z_]*external_resource[a-z_]*|(?:force_)?checkpoint"
    r"|(?:enable|disable)_(?:logging|profiling))(?![a-z0-9_$])"
)


class Sandbox:
    """A locked database serving one query (``open_sandbox``); ``con`` is its connection.

    The query's SQL goes through ``check`` before it runs. ``release`` ends the query: the database
    serves a later query of the same identity only if this one ended cleanly (read to the end, no
    error, interrupt, timeout or memory failure) and named nothing that leaves state behind; any
    other database is closed.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, identity: SandboxIdentity, *, reused: bool) -> None:
        self.con = con
        self.identity = identity
        self.reused = reused
        self._reusable = True
        self._released = False

    def check(self, sql: str) -> None:
        """Raise ``InvalidSql`` unless ``sql`` is one SELECT (see ``require_one_select``)."""
        require_one_select(self.con, sql, self.identity.files)
        if _LEAVES_STATE.search(sql.lower()):
            self._reusable = False

    def release(self, *, clean: bool) -> None:
        """Give the database back; idempotent. ``clean``: the query ended cleanly. The caller must
        have stopped using ``con`` (its watchdog stopped, its results closed)."""
        if self._released:
            return
        self._released = True
        if clean and self._reusable:
            IDLE.put(self.identity, self.con)
        else:
            SPARES.discard(self.con)


def open_sandbox(*, views: Mapping[str, str], files: Sequence[str], limits: QueryLimits) -> Sandbox:
    """A locked database holding ``views`` that may read only ``files`` (see ``locked_views``): an
    idle one of that identity, else a new one. The files must stay in place (be pinned) until the
    query is released."""
    identity = SandboxIdentity(
        views=tuple(views.items()),
        files=tuple(files),
        threads=limits.threads,
        memory_limit=limits.memory_limit,
        spill_limit=None if limits.spill_root is None else limits.spill_limit,
    )
    con = IDLE.take(identity)
    if con is not None:
        return Sandbox(con, identity, reused=True)
    return Sandbox(locked_views(views=views, files=files, limits=limits), identity, reused=False)


def run_query(sql: str, *, view_sql: str, files: Sequence[str], limits: QueryLimits) -> pa.Table:
    """Run one SELECT (DuckDB SQL over ``"dataset"``) in a locked connection; return its rows.

    ``sql`` is normally the output of ``sql_translate.translate``, but nothing here depends on
    that: whatever it says, it runs as a subquery of ``SELECT * FROM (…) LIMIT max_rows + 1`` in
    a connection as ``locked_connection``'s, so it cannot write, read other files or change
    settings. Raises ``QueryLimitExceeded`` for more than ``max_rows`` rows, a run longer than
    ``timeout_seconds`` or more memory than ``memory_limit``, and ``InvalidSql`` with DuckDB's
    first message line (paths of ``files`` removed) for any error of the query itself.
    """
    wrapped = limited(sql, limits)
    sandbox = open_sandbox(views={VIEW_NAME: view_sql}, files=files, limits=limits)
    clean = False
    try:
        sandbox.check(wrapped)
        watchdog = Watchdog(sandbox.con, limits.timeout_seconds)
        try:
            result = sandbox.con.sql(wrapped).to_arrow_table()
        except Exception as exc:
            raise query_error(exc, files=files, limits=limits, timed_out=watchdog.timed_out) from exc
        finally:
            # The watchdog must be finished before the connection is closed or used again.
            watchdog.stop()
        clean = not watchdog.timed_out
    finally:
        sandbox.release(clean=clean)
    if result.num_rows > limits.max_rows:
        raise too_many_rows(limits)
    return result


def query_body(sql: str) -> str:
    """``sql`` without surrounding blanks and trailing semicolons, ready to be wrapped."""
    return sql.strip().rstrip(";").rstrip()


def limited(sql: str, limits: QueryLimits) -> str:
    """``sql`` as a subquery that stops one row past the row limit (so that passing it shows)."""
    # The newlines keep a trailing "-- comment" from swallowing the closing parenthesis.
    return f"SELECT * FROM (\n{query_body(sql)}\n) LIMIT {limits.max_rows + 1}"


def too_many_rows(limits: QueryLimits) -> QueryLimitExceeded:
    return QueryLimitExceeded(f"the result has more than {limits.max_rows} rows; add a LIMIT or aggregate")


def require_one_select(con: duckdb.DuckDBPyConnection, sql: str, files: Sequence[str]) -> None:
    """Raise ``InvalidSql`` unless DuckDB's own parser finds exactly one SELECT in ``sql``."""
    # A query such as "SELECT 1) ; CREATE TABLE t AS (SELECT 1" would close the wrapping early and
    # smuggle in a second statement; DuckDB's own parser says how many statements there are.
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise InvalidSql(_first_line(exc, files)) from exc
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise InvalidSql("the query must be a single SELECT statement")


class Watchdog:
    """Interrupts a connection's work once ``seconds`` have passed since it was made, until stopped.

    The interrupt is repeated every 50 ms, since DuckDB forgets one that arrives between
    statements or before execution starts. ``stop`` must be called (it joins the thread) before
    the connection is closed.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, seconds: float) -> None:
        self._con = con
        self._seconds = seconds
        self._done = threading.Event()
        self._timed_out = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="query-watchdog", daemon=True)
        self._thread.start()

    @property
    def timed_out(self) -> bool:
        return self._timed_out.is_set()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _watch(self) -> None:
        if self._done.wait(self._seconds):
            return
        self._timed_out.set()
        while True:
            self._con.interrupt()
            if self._done.wait(_REINTERRUPT_SECONDS):
                return


# What DuckDB's errors say they are, from the start of their message: errors that cross the Arrow
# stream of a streamed result arrive as a plain OSError carrying only the message.
_ENGINE_FAILURES = ("INTERNAL Error", "FATAL Error", "IO Error")


def query_error(
    exc: BaseException, *, files: Sequence[str], limits: QueryLimits, timed_out: bool
) -> DatagroveError:
    """Our error for an exception raised while a query ran or its rows were fetched."""
    message = str(exc).strip()
    if isinstance(exc, duckdb.InterruptException) or message.startswith("INTERRUPT Error"):
        if timed_out:
            return QueryLimitExceeded(
                f"the query ran longer than {limits.timeout_seconds:g} s; filter, aggregate or add a LIMIT"
            )
        return DatagroveError("the query was interrupted")
    if isinstance(exc, duckdb.OutOfMemoryException) or message.startswith("Out of Memory Error"):
        return QueryLimitExceeded(
            f"the query needed more than {limits.memory_limit} of memory; filter or aggregate more"
        )
    if isinstance(exc, duckdb.InternalException | duckdb.FatalException | duckdb.IOException) or (
        message.startswith(_ENGINE_FAILURES)
    ):
        # The engine or the storage failed, not the query: a 500, whose cause stays in the logs.
        return DatagroveError("the query engine failed")
    if isinstance(exc, duckdb.Error | OSError):
        return InvalidSql(_first_line(exc, files))
    return DatagroveError("the query engine failed")


def _first_line(exc: BaseException, files: Sequence[str]) -> str:
    """DuckDB's first message line, with the dataset's file and directory paths taken out."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    paths = {(path, "<dataset file>") for path in files}
    paths |= {
        (os.path.dirname(path), "<dataset directory>")
        for path in files
        if os.path.dirname(path) not in ("", "/")
    }
    for path, placeholder in sorted(paths, key=lambda pair: len(pair[0]), reverse=True):
        message = message.replace(path, placeholder)
    return message
