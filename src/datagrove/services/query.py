"""SQL queries: translate MySQL-flavoured SQL, run it in the DuckDB sandbox, and hand its rows on
while they are produced (a large answer is never held whole): over one dataset as JSON text (the
query API), or over several as Arrow batches (a SQL dataflow, the ``dataset-sql`` connector)."""

from __future__ import annotations

import enum
import functools
import logging
import time
from collections.abc import Generator, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from datagrove import crashpoints, metrics
from datagrove.domain import Actor, Dataset
from datagrove.errors import BadRequest, DatagroveError
from datagrove.services.access import Action
from datagrove.services.audit import AuditLog
from datagrove.services.datasets import DatasetService
from datagrove.services.policies import PolicyService
from datagrove.services.versions import read_version
from datagrove.services.work_slots import Slot, Work, WorkSlots
from datagrove.tables.distributed import DistributedEngine, DistributedRows
from datagrove.tables.json_rows import RowForm
from datagrove.tables.json_stream import JsonRows
from datagrove.tables.sandbox import QueryLimits
from datagrove.tables.sql_translate import NO_DATASET, table_names, translate, translate_over
from datagrove.tables.store import TableStore, ViewSource

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["QueryAnswer", "QueryEngine", "QueryService", "RowForm"]

log = logging.getLogger("datagrove.query")

# Translating costs 2-6 ms (sqlglot parses and rewrites the whole query), 2 % of a TPC-H Q1 over
# HTTP, and dashboards send the same queries again and again. The translation is a pure function of
# the SQL and the dataset's id; errors are not kept. Longer queries are not kept, to bound memory.
_TRANSLATIONS_KEPT = 256
_LONGEST_KEPT = 8192


@functools.lru_cache(maxsize=_TRANSLATIONS_KEPT)
def _kept_translation(sql: str, dataset_id: str) -> str:
    return translate(sql, dataset_names=[dataset_id])


def _translation(sql: str, dataset_id: str) -> str:
    if len(sql) > _LONGEST_KEPT:
        return translate(sql, dataset_names=[dataset_id])
    return _kept_translation(sql, dataset_id)


class QueryEngine(enum.StrEnum):
    """Where a query runs: the DuckDB sandbox in this process, or Daft on the Ray cluster."""

    LOCAL = "local"
    DISTRIBUTED = "distributed"

    @classmethod
    def parse(cls, value: str) -> QueryEngine:
        try:
            return cls(value.lower())
        except ValueError:
            raise BadRequest(f"engine must be local or distributed, not {value!r}") from None


#: Why ``engine=distributed`` cannot run on a server without a Ray cluster.
NO_CLUSTER = (
    "engine=distributed needs a Ray cluster, and this server has none: "
    "set DATAGROVE_DISTRIBUTED_RAY_ADDRESS (see docs/distributed-queries.md)"
)


class QueryAnswer:
    """The answer to one query, being produced.

    ``columns`` (the result's names, duplicates kept) and ``types`` (Domo type names) are known at
    once. Iterating (once) yields the rows' JSON texts (objects or arrays, see ``RowForm``),
    separated by commas and without brackets, in chunks of whole rows; ``rows`` counts the rows
    so far, and is the total once iteration ends. Iteration raises the query's errors
    (``QueryLimitExceeded``, ``InvalidSql``, ``DatagroveError``).

    When the answer ends (read to the end, failed, or ``close``\\ d early) the query is written to
    the activity log and logged, once. Whoever stops reading early must call ``close``.
    """

    def __init__(self, *, dataset_id: str, rows: JsonRows | DistributedRows, on_end: _OnEnd) -> None:
        self.dataset_id = dataset_id
        self.columns = rows.columns
        self.types = rows.types
        self._rows = rows
        self._on_end = on_end
        self._iterator: Generator[bytes] | None = None
        self._ended = False

    @property
    def rows(self) -> int:
        return self._rows.rows

    def __iter__(self) -> Iterator[bytes]:
        if self._iterator is None:
            self._iterator = self._chunks()
        return self._iterator

    def close(self) -> None:
        if self._iterator is not None:
            self._iterator.close()  # runs _chunks' cleanup if it had started
        self._end("abandoned", None)

    def _chunks(self) -> Generator[bytes]:
        outcome, error = "abandoned", None
        try:
            yield from self._rows
            outcome = "success"
        except DatagroveError as exc:
            outcome, error = "failure", exc
            raise
        finally:
            self._end(outcome, error)

    def _end(self, outcome: str, error: DatagroveError | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._rows.close()
        self._on_end(outcome, error, self.rows, sandbox_reused=self._rows.sandbox_reused)


class _OnEnd:
    """Records the end of one query: the activity log entry and the "query" log line."""

    def __init__(
        self, *, audit: AuditLog, actor: Actor, dataset: Dataset, sql: str, started: float, slot: Slot | None
    ) -> None:
        self.engine = QueryEngine.LOCAL
        self._audit = audit
        self._slot = slot
        self._actor = actor
        self._dataset = dataset
        self._sql = sql
        self._started = started

    def __call__(
        self, outcome: str, error: DatagroveError | None, rows: int, *, sandbox_reused: bool | None = None
    ) -> None:
        if self._slot is not None:
            self._slot.release()  # the sandbox has been let go of: the next query may start
        if outcome == "success":
            detail = self._sql[:1000]
        elif error is not None:
            detail = f"{self._sql[:500]} -- {error.message}"
        else:
            detail = f"{self._sql[:500]} -- the answer was not read to the end ({rows} rows sent)"
        self._audit.record(
            self._actor,
            "dataset.query",
            object_type="DATASET",
            object_id=self._dataset.id,
            object_name=self._dataset.name,
            outcome="success" if outcome == "success" else "failure",
            detail=detail,
        )
        seconds = time.monotonic() - self._started
        metrics.query_ended(outcome, seconds)
        fields: dict[str, object] = {
            "dataset": self._dataset.id,
            "actor": self._actor.user.id,
            "rows": rows,
            "seconds": round(seconds, 3),
            "outcome": outcome,
            "engine": self.engine.value,
        }
        if sandbox_reused is not None:
            fields["sandbox_reused"] = sandbox_reused
        if error is not None:
            fields["code"] = error.code
        log.info("query", extra={"fields": fields})


class QueryService:
    def __init__(
        self,
        *,
        datasets: DatasetService,
        store: TableStore,
        policies: PolicyService,
        audit: AuditLog,
        limits: QueryLimits,
        slots: WorkSlots | None = None,
        distributed: DistributedEngine | None = None,
        distributed_min_rows: int | None = None,
    ) -> None:
        """``slots``: the query slots queries on behalf of users take (none: unbounded)."""
        self._slots = slots
        self._datasets = datasets
        self._distributed = distributed
        self._distributed_min_rows = distributed_min_rows
        self._policies = policies
        self._audit = audit
        self._store = store
        self._limits = limits

    def execute(
        self,
        *,
        actor: Actor,
        dataset_id: str,
        sql: str,
        form: RowForm = RowForm.OBJECTS,
        version: str | None = None,
        engine: QueryEngine | None = None,
    ) -> QueryAnswer:
        """Start ``sql`` (MySQL) over the dataset as ``actor`` may see it; its rows come out of
        the returned answer as JSON ``form``. Errors found before the first row (unknown dataset,
        no access, a query that does not parse or bind, a version that is not there) are raised
        here, as is ``TooManyRequests`` when the actor or the server runs as many queries as the
        query slots allow. With ``version`` the query reads that earlier version
        (``services/versions.py``). The query holds its slot until its answer ends.

        ``engine`` says where it runs; None: on the Ray cluster when one is configured and the
        dataset has more rows than ``distributed_min_rows``, else locally (``_engine_for``). A
        distributed query is answered in full before this returns."""
        slot = self._slots.take(Work.QUERY, actor.user.id) if self._slots is not None else None
        try:
            return self._execute(actor, dataset_id, sql, form, version, engine, slot)
        except BaseException:
            if slot is not None:
                slot.release()
            raise

    def _execute(
        self,
        actor: Actor,
        dataset_id: str,
        sql: str,
        form: RowForm,
        version: str | None,
        engine: QueryEngine | None,
        slot: Slot | None,
    ) -> QueryAnswer:
        started = time.monotonic()
        dataset = self._datasets.get(actor=actor, dataset_id=dataset_id)
        audited = sql if version is None else f"{sql} -- version {version}"
        on_end = _OnEnd(
            audit=self._audit, actor=actor, dataset=dataset, sql=audited, started=started, slot=slot
        )
        rows: JsonRows | DistributedRows
        try:
            on_end.engine = self._engine_for(dataset, engine, version)
            translated = _translation(sql, dataset.id)
            if on_end.engine is QueryEngine.DISTRIBUTED:
                rows = self._run_distributed(actor, dataset, translated, form)
            else:
                rows = self._run_local(actor, dataset, translated, form, version)
        except DatagroveError as exc:
            on_end("failure", exc, 0)
            raise
        return QueryAnswer(dataset_id=dataset.id, rows=rows, on_end=on_end)

    def _engine_for(
        self, dataset: Dataset, requested: QueryEngine | None, version: str | None
    ) -> QueryEngine:
        if requested is QueryEngine.DISTRIBUTED:
            if self._distributed is None:
                raise BadRequest(NO_CLUSTER)
            if version is not None:
                raise BadRequest("engine=distributed reads the current version only; use engine=local")
            return requested
        if requested is QueryEngine.LOCAL or self._distributed is None or version is not None:
            return QueryEngine.LOCAL
        threshold = self._distributed_min_rows
        if threshold is not None and dataset.row_count > threshold:
            return QueryEngine.DISTRIBUTED
        return QueryEngine.LOCAL

    def _run_local(
        self, actor: Actor, dataset: Dataset, translated: str, form: RowForm, version: str | None
    ) -> JsonRows:
        if version is None:
            columns, at, buffered = dataset.columns, None, self._datasets.buffered_rows(dataset.id)
        else:
            past = read_version(self._store, dataset, version)
            columns, at, buffered = past.columns, past.snapshot, []
        crashpoints.reached(crashpoints.QUERY_STARTING)
        return self._store.query(
            dataset.id,
            columns,
            translated,
            self._limits,
            self._policies.row_filter(actor, dataset, columns),
            buffered=buffered,
            form=form,
            at=at,
        )

    def _run_distributed(
        self, actor: Actor, dataset: Dataset, translated: str, form: RowForm
    ) -> DistributedRows:
        assert self._distributed is not None
        # Before the table is loaded: see DatasetService.buffered_rows.
        buffered = self._datasets.buffered_rows(dataset.id)
        table, pending = self._store.table_and_buffered(dataset.id, dataset.columns, buffered)
        return self._distributed.query(
            table,
            columns=dataset.columns,
            sql=translated,
            limits=self._limits,
            row_filter=self._policies.row_filter(actor, dataset, dataset.columns),
            buffered=pending,
            form=form,
        )

    def open_batches(
        self, *, actor: Actor, sql: str, timeout_seconds: float | None = None
    ) -> pa.RecordBatchReader:
        """Start ``sql`` (MySQL) over the datasets it names by id (``FROM "<id>"``, back-quoted, or
        bare where that parses), each as ``actor`` may see it (row-level policies applied), and
        return a reader of its rows as Arrow batches, in bounded memory.

        Raised here: ``InvalidSql`` (does not parse, is not one read-only query, fails to bind),
        ``BadRequest`` (names no dataset), ``NotFound`` naming the first dataset that does not exist
        or that ``actor`` may not view. Errors while reading come out of the reader as
        ``pyarrow.ArrowInvalid``; ``datagrove.tables.batch_stream.batch_error`` gives back ours.
        The sandbox is released once the reader is read to the end, fails, or is closed.
        ``timeout_seconds`` replaces the query time limit (a dataflow may run longer than a query).
        """
        names = table_names(sql)
        if not names:
            raise BadRequest(NO_DATASET)
        datasets = [self._datasets.get(actor=actor, dataset_id=name, action=Action.VIEW) for name in names]
        translated = translate_over(
            sql, views={name: dataset.id for name, dataset in zip(names, datasets, strict=True)}
        )
        sources = {
            dataset.id: ViewSource(
                dataset.id,
                dataset.columns,
                self._policies.row_filter(actor, dataset),
                # Before the snapshot, which query_batches resolves: see DatasetService.buffered_rows.
                self._datasets.buffered_rows(dataset.id),
            )
            for dataset in datasets
        }
        limits = (
            self._limits
            if timeout_seconds is None
            else replace(self._limits, timeout_seconds=timeout_seconds)
        )
        return self._store.query_batches(translated, sources, limits)
