"""Paying the first-use costs of the data path when the server starts, not on a user's request.

A process's first CSV conversion, SQL translation and sandboxed query each take hundreds of
milliseconds longer than the ones after (Arrow's compute kernels and regular expressions are
built, sqlglot's dialects and DuckDB's Parquet reader initialised): on the stream benchmark the
first ingest after a start took 1.4 s longer than the next. ``warm_up`` does each once, on a few
rows in a scratch directory, and touches nothing else.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa

from datagrove.tables.csv_ingest import csv_to_parquet
from datagrove.tables.sandbox import QueryLimits, run_query
from datagrove.tables.sql_names import quote_identifier, quote_literal
from datagrove.tables.sql_translate import translate
from datagrove.tables.types import Column, ColumnType

_COLUMNS = [Column(f"c_{t.value.lower()}", t) for t in ColumnType]
_SAMPLE = b'"a ""b""",-1,1.5,2.25,2024-01-01,2024-01-01 10:00:00.5,true\n,1.0,"",,,,\\N\n'


def warm_up(scratch_dir: Path) -> pa.Table:
    """Convert, translate and query a tiny dataset once, in a directory removed afterwards; returns
    the query's answer (the sample's distinct strings with their counts)."""
    with tempfile.TemporaryDirectory(prefix="warm-up-", dir=scratch_dir) as folder:
        source, target = Path(folder) / "sample.csv", Path(folder) / "sample.parquet"
        source.write_bytes(_SAMPLE)
        csv_to_parquet(source, target, _COLUMNS, threads=1)
        sql = translate("SELECT c_string, COUNT(*) FROM `table` GROUP BY c_string", dataset_names=())
        names = ", ".join(quote_identifier(column.name) for column in _COLUMNS)
        view = f"SELECT {names} FROM read_parquet([{quote_literal(str(target))}])"
        return run_query(
            sql, view_sql=view, files=[str(target)], limits=QueryLimits(timeout_seconds=30, max_rows=10)
        )
