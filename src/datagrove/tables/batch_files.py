"""``BatchFiles``: Arrow record batches written to staged Parquet files, a bounded number of rows each.

A connector run hands its batches here one at a time. They are gathered into row groups of the
layout's size before being written (a batch is a connector's unit of reading, often smaller: one
row group per batch made files that scan slower), so a run's memory is at most one row group plus
one batch, whatever the size of the source. The files are written with exactly the dataset's Arrow
schema (``ColumnType.arrow``), which is what ``TableStore.commit_files`` adds to the Iceberg table.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datagrove.tables.csv_canonical import arrow_writer
from datagrove.tables.field_ids import arrow_schema
from datagrove.tables.parquet_layout import ParquetLayout
from datagrove.tables.types import Column


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    rows: int
    bytes: int


class BatchFiles:
    def __init__(
        self,
        directory: Path,
        columns: Sequence[Column],
        *,
        rows_per_file: int,
        parquet: ParquetLayout = ParquetLayout(),
        field_ids: Sequence[int] | None = None,
    ) -> None:
        """Files of ``columns`` carrying the Iceberg ``field_ids`` (``tables/field_ids.py``; None: 1..n)."""
        self._directory = directory
        self._schema = arrow_schema(columns, field_ids)
        self._layout = parquet
        self._rows_per_file = max(1, rows_per_file)
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._rows = 0  # in the current file, written or pending
        self._pending: list[pa.RecordBatch] = []  # the current file's next row group
        self._pending_rows = 0
        self.written: list[WrittenFile] = []

    def write(self, batch: pa.RecordBatch) -> None:
        """Append ``batch`` (already of the dataset's schema), starting a new file when full."""
        while batch.num_rows:
            if self._path is None:
                self._open()
            room = min(self._rows_per_file - self._rows, self._layout.row_group_rows - self._pending_rows)
            head, batch = batch.slice(0, room), batch.slice(room)
            self._pending.append(head)
            self._pending_rows += head.num_rows
            self._rows += head.num_rows
            if self._pending_rows >= self._layout.row_group_rows:
                self._flush()
            if self._rows >= self._rows_per_file:
                self._close_file()

    def finish(self) -> list[WrittenFile]:
        """Close the last file; the files written, in order."""
        if self._path is not None:
            self._close_file()
        return self.written

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._pending, self._pending_rows = [], 0
        for path in [f.path for f in self.written] + ([self._path] if self._path else []):
            path.unlink(missing_ok=True)

    def _open(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        self._path = self._directory / f"run-{len(self.written):06d}-{uuid.uuid4().hex[:8]}.parquet"
        self._rows = 0

    def _flush(self) -> None:
        """Write the pending rows as one row group (the writer is made with the first, whose
        values decide which columns get dictionaries)."""
        assert self._path is not None
        table = pa.Table.from_batches(self._pending, schema=self._schema) if self._pending else None
        if self._writer is None:
            self._writer = arrow_writer(self._path, self._schema, self._layout, first=table)
        if table is not None and table.num_rows:
            self._writer.write_table(table, row_group_size=table.num_rows)
        self._pending, self._pending_rows = [], 0

    def _close_file(self) -> None:
        assert self._path is not None
        self._flush()
        assert self._writer is not None
        self._writer.close()
        self.written.append(WrittenFile(self._path, self._rows, self._path.stat().st_size))
        self._writer, self._path, self._rows = None, None, 0
