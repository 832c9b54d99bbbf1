"""Rows acknowledged by the one-row append but not yet folded into the table, as Parquet files.

The append buffer (``services/appends.py``) keeps canonical CSV lines (``tables/csv_record.py``),
each batch checked against the schema the dataset had when it was appended. A read (query, export)
and a fold both need those rows as Parquet in the table's current schema: ``write_buffered``
converts each run of batches with one schema through the dialect's own conversion (``csv_ingest``),
so a buffered row reads exactly as it would after an import, and brings a run whose schema is no
longer the table's into the current one as a schema change brings the table's rows
(``store.conforming_select``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from datagrove.errors import DatagroveError, InvalidCsv
from datagrove.tables.conform import conforming_select
from datagrove.tables.csv_ingest import csv_to_parquet
from datagrove.tables.field_ids import duckdb_copy_option
from datagrove.tables.parquet_layout import ParquetLayout
from datagrove.tables.sql_names import quote_literal
from datagrove.tables.types import Column


@dataclass(frozen=True)
class BufferedRows:
    """One buffered batch: rows ``last_seq - n + 1 .. last_seq`` as CSV lines checked against ``columns``."""

    last_seq: int
    columns: tuple[Column, ...]
    csv: str


def after(batches: Sequence[BufferedRows], watermark: int) -> list[BufferedRows]:
    """The batches a table whose watermark is ``watermark`` does not hold yet."""
    return [batch for batch in batches if batch.last_seq > watermark]


def write_buffered(
    batches: Sequence[BufferedRows],
    columns: Sequence[Column],
    directory: Path,
    *,
    parquet: ParquetLayout = ParquetLayout(),
    field_ids: Sequence[int] | None = None,
) -> list[Path]:
    """``batches``' rows, in order, as Parquet files in schema ``columns`` with the Iceberg
    ``field_ids`` (``tables/field_ids.py``; None: 1..n), one file per run of batches appended under
    one schema (none for no batches), laid out as ``parquet``, written into ``directory``."""
    written: list[Path] = []
    runs = itertools.groupby(batches, key=lambda batch: batch.columns)
    for index, (run_columns, run) in enumerate(runs):
        source = directory / f"buffered-{index:06d}.csv"
        with source.open("w", encoding="utf-8", newline="") as out:
            for batch in run:
                out.write(batch.csv)
        target = directory / f"buffered-{index:06d}.parquet"
        try:
            csv_to_parquet(
                source,
                target,
                run_columns,
                threads=1,
                label="buffered rows",
                parquet=parquet,
                field_ids=field_ids if tuple(run_columns) == tuple(columns) else None,
            )
        except InvalidCsv as exc:
            # Every line was checked against these columns when it was appended.
            raise DatagroveError("buffered rows no longer convert") from exc
        finally:
            source.unlink(missing_ok=True)
        if tuple(run_columns) != tuple(columns):
            target = _conform(target, run_columns, columns, parquet, field_ids)
        written.append(target)
    return written


def _conform(
    source: Path,
    old: Sequence[Column],
    new: Sequence[Column],
    parquet: ParquetLayout,
    field_ids: Sequence[int] | None,
) -> Path:
    target = source.with_name(source.stem + "-conformed.parquet")
    con = duckdb.connect(":memory:", config={"threads": 1, "preserve_insertion_order": True})
    try:
        con.execute("SET python_enable_replacements = false")
        con.execute(
            f"COPY (SELECT {conforming_select(old, new)} FROM read_parquet({quote_literal(str(source))})) "
            f"TO {quote_literal(str(target))} ({parquet.duckdb_copy_options()}{duckdb_copy_option(new, field_ids)})"
        )
    finally:
        con.close()
    source.unlink()
    return target
