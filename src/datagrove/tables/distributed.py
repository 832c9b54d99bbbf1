"""Queries that run on a Ray cluster through Daft, reading the dataset's own Iceberg table.

The same rules as in the DuckDB sandbox (``datagrove.tables.sandbox``) hold, in the same order:

1. The table's rows (and the append buffer's rows its snapshot does not hold yet) pass the
   dataset's row filter (``datagrove.tables.policy_sql``) first; only that filtered relation is
   bound, under the name ``"dataset"`` that translated SQL reads. No user expression sees a row the
   policies hide, and nothing else is bound (no Python variables, no catalog).
2. The user's SQL is the DuckDB form ``sql_translate.translate`` gives; Daft's SQL reads it. Daft
   also has functions that reach files and URLs (``url_download``, ``url_upload``, ``file``), so
   only the functions of ``_ALLOWED_FUNCTIONS`` may appear. A query Daft cannot run (a function it
   lacks, a type it refuses, a syntax it does not parse) is an ``InvalidSql`` saying so: it never
   falls back to DuckDB, whose answer might differ.
3. At most ``max_rows + 1`` rows come back (more is ``QueryLimitExceeded``), and the server stops
   waiting after ``timeout_seconds``. The cluster is not told to stop: Ray runs the plan to its
   end, then drops the result.

The answer is collected as Arrow in the server and DuckDB writes its JSON (``json_rows``) exactly
as for a local query, so both engines answer with the same names, Domo types and value texts.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from datagrove.errors import DatagroveError, InvalidSql, QueryLimitExceeded
from datagrove.tables.json_rows import RowForm, domo_type, rows_json_sql
from datagrove.tables.json_stream import column_text
from datagrove.tables.sandbox import QueryLimits, too_many_rows
from datagrove.tables.sql_names import quote_identifier
from datagrove.tables.sql_translate import VIEW_NAME
from datagrove.tables.types import Column

if TYPE_CHECKING:
    from pyiceberg.table import Table

__all__ = ["DistributedEngine", "DistributedRows"]

log = logging.getLogger("datagrove.distributed")

# Ray, when its driver runs under ``uv run`` (``./dg serve`` does), ships the driver's working
# directory to the cluster and starts every worker through ``uv run`` there: the cluster's nodes
# have their own environment (docs/distributed-queries.md), and in it those workers died at start,
# so that a query waited for workers forever. Read by Ray when it is first imported, which is later
# (``DistributedEngine._connect``); an operator's own setting stands.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

ENGINE = "the distributed engine (Daft on Ray)"

# Functions (as sqlglot names them in the translated SQL) that only compute on their arguments.
# An allow list, not a deny list: a function Daft adds later must be looked at before it is let in.
_ALLOWED_FUNCTIONS = frozenset(
    {
        # aggregates
        *("sum", "avg", "count", "min", "max", "stddev", "stddev_samp", "stddev_pop", "variance"),
        *("var_samp", "var_pop", "approx_distinct", "count_if", "bool_and", "bool_or", "any_value"),
        # conditions, casts
        *("case", "if", "coalesce", "nullif", "cast", "trycast", "try_cast", "greatest", "least"),
        # numbers
        *("abs", "ceil", "floor", "round", "sqrt", "cbrt", "ln", "log", "log2", "log10", "exp"),
        *("pow", "power", "sign", "mod", "sin", "cos", "tan", "pi"),
        # text
        *("upper", "lower", "length", "trim", "ltrim", "rtrim", "substring", "replace", "left"),
        *("right", "lpad", "rpad", "reverse", "starts_with", "startswith", "ends_with", "contains"),
        *("strpos", "regexp_like", "regexp_extract", "regexp_replace", "split", "concat"),
        # dates and times
        *("year", "month", "day", "dayofweek", "hour", "minute", "second", "quarter", "week"),
        *("date_trunc", "datetrunc", "timestamp_trunc", "strftime", "extract", "date_add"),
        *("currentdate", "current_date", "to_date", "str_to_time", "date", "todate"),
    }
)


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return node.sql_name().lower()


def require_plain_functions(sql: str) -> None:
    """Raise ``InvalidSql`` unless every function ``sql`` (DuckDB SQL) calls is allowed here."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except SqlglotError:
        raise InvalidSql(f"{ENGINE} cannot run this query: it does not parse") from None
    for func in tree.find_all(exp.Func):
        if isinstance(func, exp.Connector):  # AND, OR: sqlglot counts them as functions
            continue
        name = _function_name(func)
        if name not in _ALLOWED_FUNCTIONS:
            raise InvalidSql(f"{ENGINE} cannot run the function {name}(); run the query with engine=local")


class DistributedEngine:
    """Daft on the Ray cluster at ``address``; connects on first use, once per process (Daft has
    one runner per process)."""

    def __init__(self, *, address: str) -> None:
        self.address = address
        self._connected = False
        self._lock = threading.Lock()
        # Queries wait on this pool, so that one that outlives its time limit can be left running
        # (Daft cannot be interrupted) while the request answers.
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="daft-query")

    def _connect(self) -> None:
        import daft
        import ray

        with self._lock:
            if self._connected:
                return
            try:
                # Connected here rather than by Daft, to keep the workers' output (Daft's progress
                # bars, their logs) in the cluster's own log files instead of the server's.
                if not ray.is_initialized():
                    ray.init(address=self.address, log_to_driver=False)
                daft.set_runner_ray(noop_if_initialized=True)
            except Exception as exc:
                log.exception("could not connect to the Ray cluster at %s", self.address)
                raise DatagroveError(f"{ENGINE} is not reachable") from exc
            self._connected = True

    def query(
        self,
        table: Table,
        *,
        columns: Sequence[Column],
        sql: str,
        limits: QueryLimits,
        row_filter: str | None,
        buffered: pa.Table | None,
        form: RowForm,
    ) -> DistributedRows:
        """Run translated ``sql`` over ``table``'s current snapshot plus ``buffered`` rows, as
        ``row_filter`` allows them; the answer's rows come out of the returned object as JSON
        ``form`` (as ``json_stream.JsonRows``). Raises ``InvalidSql`` (the query cannot run here),
        ``QueryLimitExceeded`` (rows, time) and ``DatagroveError`` (the cluster failed)."""
        require_plain_functions(sql)
        self._connect()
        future = self._pool.submit(self._collect, table, columns, sql, limits, row_filter, buffered)
        try:
            result = future.result(timeout=limits.timeout_seconds)
        except concurrent.futures.TimeoutError:
            self._log_cluster_state()
            raise QueryLimitExceeded(
                f"the query ran longer than {limits.timeout_seconds:g} s; filter, aggregate or add a LIMIT"
            ) from None
        if result.num_rows > limits.max_rows:
            raise too_many_rows(limits)
        return DistributedRows(result, form)

    def _log_cluster_state(self) -> None:
        """A warning with what the cluster had free when a query ran out of time: a query that
        waits for workers that never start looks the same as a slow one from here."""
        import ray

        try:
            alive = sum(1 for node in ray.nodes() if node.get("Alive"))
            fields = {
                "address": self.address,
                "nodes_alive": alive,
                "available": ray.available_resources(),
                "total": ray.cluster_resources(),
            }
        except Exception as exc:  # the cluster itself may be what is gone
            fields = {"address": self.address, "state_unavailable": type(exc).__name__}
        log.warning("a distributed query ran out of time", extra={"fields": fields})

    def _collect(
        self,
        table: Table,
        columns: Sequence[Column],
        sql: str,
        limits: QueryLimits,
        row_filter: str | None,
        buffered: pa.Table | None,
    ) -> pa.Table:
        import daft
        from daft.exceptions import DaftCoreException

        names = ", ".join(quote_identifier(c.name) for c in columns)
        where = f" WHERE ({row_filter})" if row_filter is not None else ""
        try:
            source = daft.read_iceberg(table)
            if buffered is not None:
                source = source.concat(daft.from_arrow(buffered))
            # The policy's filter first, in a statement of its own: the user's SQL only ever sees
            # its result.
            allowed = daft.sql(f"SELECT {names} FROM source{where}", register_globals=False, source=source)
        except Exception as exc:
            log.exception("could not read dataset table %s on the cluster", table.name())
            raise DatagroveError(f"{ENGINE} could not read the dataset") from exc
        try:
            answer = daft.sql(sql, register_globals=False, **{VIEW_NAME: allowed})
        except Exception as exc:  # planning only: Daft's InvalidSQLException is not importable
            raise InvalidSql(f"{ENGINE} cannot run this query: {_first_line(exc, table)}") from None
        try:
            return answer.limit(limits.max_rows + 1).to_arrow()
        except (DaftCoreException, ValueError, TypeError) as exc:
            raise InvalidSql(f"{ENGINE} failed to run this query: {_first_line(exc, table)}") from None
        except Exception as exc:
            log.exception("query on the Ray cluster failed")
            raise DatagroveError(f"{ENGINE} failed") from exc


def _first_line(exc: BaseException, table: Table) -> str:
    """Daft's message, its first line naming the problem, without the table's storage location."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    # Daft wraps a planning error as "... Unable to create logical plan node." / "Due to: <cause>".
    causes = [line.removeprefix("Due to: ") for line in lines if line.startswith("Due to: ")]
    message = (causes[-1] if causes else lines[0] if lines else type(exc).__name__)[:500]
    return message.replace(table.location(), "<dataset location>")


class DistributedRows:
    """A distributed query's answer, held in memory (at most ``max_rows`` rows), as JSON text: the
    same interface and text as ``json_stream.JsonRows``."""

    #: Only the local engine reuses sandboxes.
    sandbox_reused: bool | None = None

    def __init__(self, result: pa.Table, form: RowForm) -> None:
        self.columns = list(result.column_names)
        self.rows = 0
        self._result: pa.Table | None = result.rename_columns([f"c{i}" for i in range(result.num_columns)])
        with duckdb.connect(":memory:") as con:
            con.execute("SET python_enable_replacements = false")
            con.register("answer", self._result)
            self._types = list(con.sql("SELECT * FROM answer").types)
        self.types = [domo_type(t) for t in self._types]
        self._form = form

    def __iter__(self) -> Iterator[bytes]:
        result, self._result = self._result, None
        if result is None:
            raise RuntimeError("the rows of a query can be read once")
        first = True
        with duckdb.connect(":memory:") as con:
            con.execute("SET python_enable_replacements = false")
            con.execute("SET threads = 1")
            con.register("answer", result)
            select = rows_json_sql("SELECT * FROM answer", self.columns, self._types, self._form)
            for batch in con.sql(select).to_arrow_reader(8192):
                if not batch.num_rows:
                    continue
                self.rows += batch.num_rows
                text = column_text(batch.column(0))
                yield bytes(text[1:] if first else text)
                first = False

    def close(self) -> None:
        self._result = None
