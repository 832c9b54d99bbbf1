"""SQL queries over one dataset: translate MySQL-flavoured SQL, run it in the DuckDB sandbox."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from datagrove.domain import Actor
from datagrove.errors import DatagroveError
from datagrove.services.audit import AuditLog
from datagrove.services.datasets import DatasetService
from datagrove.services.policies import PolicyService
from datagrove.tables.sandbox import QueryLimits
from datagrove.tables.sql_translate import translate
from datagrove.tables.store import TableStore

log = logging.getLogger("datagrove.query")


@dataclass(frozen=True)
class QueryResult:
    dataset_id: str
    columns: list[str]
    types: list[str]  # Domo type names
    rows: list[tuple[Any, ...]]


class QueryService:
    def __init__(
        self,
        *,
        datasets: DatasetService,
        store: TableStore,
        policies: PolicyService,
        audit: AuditLog,
        limits: QueryLimits,
    ) -> None:
        self._datasets = datasets
        self._policies = policies
        self._audit = audit
        self._store = store
        self._limits = limits

    def execute(self, *, actor: Actor, dataset_id: str, sql: str) -> QueryResult:
        started = time.monotonic()
        dataset = self._datasets.get(actor=actor, dataset_id=dataset_id)
        try:
            translated = translate(sql, dataset_names=[dataset.id])
            table = self._store.query(
                dataset.id,
                dataset.columns,
                translated,
                self._limits,
                self._policies.row_filter(actor, dataset),
                buffered=self._datasets.buffered_rows(dataset.id),
            )
        except DatagroveError as exc:
            self._audit.record(
                actor,
                "dataset.query",
                object_type="DATASET",
                object_id=dataset.id,
                object_name=dataset.name,
                outcome="failure",
                detail=f"{sql[:500]} -- {exc.message}",
            )
            raise
        self._audit.record(
            actor,
            "dataset.query",
            object_type="DATASET",
            object_id=dataset.id,
            object_name=dataset.name,
            detail=sql[:1000],
        )
        result = QueryResult(
            dataset_id=dataset.id,
            columns=list(table.column_names),
            types=[domo_type_name(field.type) for field in table.schema],
            rows=list(zip(*(column.to_pylist() for column in table.columns), strict=True))
            if table.num_columns
            else [],
        )
        log.info(
            "query",
            extra={
                "fields": {
                    "dataset": dataset.id,
                    "actor": actor.user.id,
                    "rows": len(result.rows),
                    "seconds": round(time.monotonic() - started, 3),
                }
            },
        )
        return result


def domo_type_name(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type):
        return "LONG"
    if pa.types.is_floating(arrow_type):
        return "DOUBLE"
    if pa.types.is_decimal(arrow_type):
        return "DECIMAL"
    if pa.types.is_date(arrow_type):
        return "DATE"
    if pa.types.is_timestamp(arrow_type):
        return "DATETIME"
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    return "STRING"
