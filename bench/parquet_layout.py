"""Which Parquet layout Datagrove should write: TPC-H Q1 time against file size against ingest time.

TPC-H ``lineitem`` (the CSV of ``tpch_query``) is written once per candidate layout by Datagrove's
own writers, the way the server would write it:

* ``canonical``: ``csv_to_parquet`` taking the fast path (Arrow's writer), as every import and
  stream part of a canonical file does;
* ``strict``: ``csv_to_parquet`` with the fast path off (DuckDB's ``COPY … TO``), as a file outside
  the canonical forms, the buffered one-row appends and the schema-change rewrite are written;
* ``connector``: ``BatchFiles`` fed 65,536-row batches (``connector_batch_rows``), as a connector
  run writes; its batches are read from the canonical file, so its time is not CSV → Parquet.

Candidates vary the codec (snappy, zstd, lz4, uncompressed), the rows per row group (DuckDB's
122,880 against 1M) and, for the Arrow writers, dictionary encoding (``auto``: columns that repeat;
``all``; ``none``). The baseline is DuckDB's own default ``COPY … TO parquet`` of the same CSV
(snappy, its own row groups and dictionaries), measured in the same run.

For each file: ingest time (CSV → Parquet, median of ``--ingest-runs``), size, and TPC-H Q1 in an
in-process DuckDB (2 threads, as the server), the median of ``--runs`` rounds that query every file
once each, interleaved so that drift on the shared machine hits every layout alike. Every file must
give the baseline's answer. Both are also given in CPU time of this process (every DuckDB and
Arrow thread runs in it), which other work on the two shared cores disturbs far less than the
elapsed time: it is the figure to compare layouts by when the load average is high.

    ./dg bench parquet_layout [--scale 1] [--runs 7] [--ingest-runs 2] [--quick] [--record/--no-record]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow.parquet as pq

from common import ROOT, machine, markdown_table, median, record_section, text_table, today
from datagrove.tables.batch_files import BatchFiles
from datagrove.tables.csv_ingest import csv_to_parquet
from datagrove.tables.parquet_layout import DEFAULT_CODEC, ROW_GROUP_ROWS, ParquetLayout
from datagrove.tables.types import Column, ColumnType
from tpch_query import (
    LINEITEM,
    QUERIES,
    THREADS,
    duckdb_csv_source,
    lineitem_csv,
    quiet_duckdb,
    scale_label,
    verify_checksum,
)

HEADING = "Parquet layout: codec, row groups, dictionaries (issue 12)"
COLUMNS = [Column(name, ColumnType(domo)) for name, domo, _, _ in LINEITEM]
CONNECTOR_BATCH_ROWS = 65_536  # the default connector_batch_rows
Writer = Literal["duckdb default", "canonical", "strict", "connector"]


@dataclass(frozen=True)
class Candidate:
    writer: Writer
    layout: ParquetLayout | None  # None: the baseline, DuckDB's defaults

    @property
    def name(self) -> str:
        if self.layout is None:
            return "DuckDB default COPY (baseline)"
        layout = self.layout
        arrow = "" if self.writer == "strict" else f", dict {layout.dictionary}, pages {layout.pages}"
        return f"{self.writer}: {layout.codec}, {layout.row_group_rows:,} rows/group{arrow}"


def candidates(quick: bool) -> list[Candidate]:
    found = [Candidate("duckdb default", None)]
    for codec in ("snappy", "zstd", "lz4", "uncompressed"):
        found.append(Candidate("canonical", ParquetLayout(codec=codec)))
    for codec in ("snappy", "zstd"):
        found.append(Candidate("canonical", ParquetLayout(codec=codec, pages="arrow")))
    if quick:
        return found
    found.append(Candidate("canonical", ParquetLayout(codec="snappy", row_group_rows=1_000_000)))
    for dictionary in ("all", "none"):
        found.append(Candidate("canonical", ParquetLayout(codec="snappy", dictionary=dictionary)))
    for codec in ("snappy", "zstd", "lz4"):
        found.append(Candidate("strict", ParquetLayout(codec=codec)))
    found.append(Candidate("strict", ParquetLayout(codec="snappy", row_group_rows=1_000_000)))
    found.append(Candidate("connector", ParquetLayout(codec="snappy")))
    return found


# --- writing ------------------------------------------------------------------------------------


def duckdb_default(csv: Path, target: Path) -> None:
    con = quiet_duckdb()
    try:
        con.execute(f"COPY (SELECT * FROM {duckdb_csv_source(csv)}) TO '{target}' (FORMAT parquet)")
    finally:
        con.close()


def connector_write(source: Path, target: Path, layout: ParquetLayout) -> None:
    """``BatchFiles`` fed the rows of ``source`` in connector-sized batches, into one file."""
    files = BatchFiles(target.parent / f"{target.stem}-run", COLUMNS, rows_per_file=10**9, parquet=layout)
    for batch in pq.ParquetFile(source).iter_batches(batch_size=CONNECTOR_BATCH_ROWS):
        files.write(batch)
    (written,) = files.finish()
    os.replace(written.path, target)


def write(candidate: Candidate, csv: Path, target: Path, canonical_file: Path | None) -> None:
    target.unlink(missing_ok=True)
    layout = candidate.layout
    if layout is None:
        duckdb_default(csv, target)
    elif candidate.writer == "connector":
        assert canonical_file is not None
        connector_write(canonical_file, target, layout)
    else:
        fast = candidate.writer == "canonical"
        written = csv_to_parquet(csv, target, COLUMNS, threads=THREADS, parquet=layout, fast_path=fast)
        if written.canonical != fast:
            raise SystemExit(f"{candidate.name}: the file took the other conversion")


# --- measuring ----------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(elapsed ms, CPU ms of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


@dataclass
class Figures:
    candidate: Candidate
    path: Path
    ingest_ms: list[tuple[float, float]]
    q1_ms: list[tuple[float, float]] = field(default_factory=list)
    size: int = 0
    row_groups: int = 0
    codec: str = ""

    @property
    def ingest(self) -> float:
        return median([wall for wall, _ in self.ingest_ms])

    @property
    def ingest_cpu(self) -> float:
        return median([cpu for _, cpu in self.ingest_ms])

    @property
    def q1(self) -> float:
        return median([wall for wall, _ in self.q1_ms])

    @property
    def q1_cpu(self) -> float:
        return median([cpu for _, cpu in self.q1_ms])


def q1_connection(path: Path) -> duckdb.DuckDBPyConnection:
    con = quiet_duckdb()
    con.execute(f"CREATE VIEW lineitem AS SELECT * FROM read_parquet('{path}')")
    return con


def run_q1(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(QUERIES[0].duckdb).fetchall()


def same_answer(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    return len(a) == len(b) and all(
        x[:2] == y[:2] and all(math.isclose(p, q, rel_tol=1e-9) for p, q in zip(x[2:], y[2:]))
        for x, y in zip(a, b)
    )


def measure(
    csv: Path, directory: Path, chosen: list[Candidate], runs: int, ingest_runs: int
) -> list[Figures]:
    figures: list[Figures] = []
    canonical_file: Path | None = None
    for index, candidate in enumerate(chosen):
        target = directory / f"layout-{index:02d}.parquet"
        ingest = [timed(partial(write, candidate, csv, target, canonical_file)) for _ in range(ingest_runs)]
        metadata = pq.ParquetFile(target).metadata
        figure = Figures(
            candidate,
            target,
            ingest,
            size=target.stat().st_size,
            row_groups=metadata.num_row_groups,
            codec=metadata.row_group(0).column(0).compression,
        )
        if candidate.writer == "canonical" and canonical_file is None:
            canonical_file = target
        figures.append(figure)
        print(
            f"{candidate.name}: {figure.size / 1e6:.0f} MB, {figure.row_groups} row groups, "
            f"{figure.codec}, written in {figure.ingest / 1000:.1f} s",
            flush=True,
        )

    connections = [q1_connection(f.path) for f in figures]
    try:
        expected = run_q1(connections[0])  # warm-ups, and every answer checked against the baseline
        for figure, con in zip(figures, connections):
            if not same_answer(run_q1(con), expected):
                raise SystemExit(f"{figure.candidate.name}: Q1 answer differs from the baseline's")
        for _ in range(runs):
            for figure, con in zip(figures, connections):
                figure.q1_ms.append(timed(partial(run_q1, con)))
    finally:
        for con in connections:
            con.close()
    return figures


# --- reporting ----------------------------------------------------------------------------------

HEADERS = (
    "writer: codec, row group, dictionary, pages",
    "file MB",
    "row groups",
    "ingest s (CSV → Parquet)",
    "ingest CPU s",
    "Q1 ms",
    "Q1 / baseline",
    "Q1 CPU ms",
    "Q1 CPU / baseline",
)


def rows(figures: Sequence[Figures], csv_mb: float) -> list[list[str]]:
    baseline = figures[0]
    return [
        [
            f.candidate.name,
            f"{f.size / 1e6:.0f}",
            str(f.row_groups),
            f"{f.ingest / 1000:.1f} ({csv_mb / f.ingest * 1000:.0f} MB/s)"
            if f.candidate.writer != "connector"
            else f"{f.ingest / 1000:.1f} (from Parquet batches)",
            f"{f.ingest_cpu / 1000:.1f}",
            f"{f.q1:.0f}",
            f"{f.q1 / baseline.q1:.2f}×",
            f"{f.q1_cpu:.0f}",
            f"{f.q1_cpu / baseline.q1_cpu:.2f}×",
        ]
        for f in figures
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1 = 6,001,215 rows)")
    parser.add_argument("--runs", type=int, default=7, help="interleaved Q1 rounds over every file")
    parser.add_argument("--ingest-runs", type=int, default=2, help="writes of each file (median)")
    parser.add_argument("--quick", action="store_true", help="only codecs and pages of the canonical writer")
    parser.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the figures into bench/RESULTS.md (default: only at scale 1 or more, not --quick)",
    )
    args = parser.parse_args(argv)
    record = args.record if args.record is not None else args.scale >= 1 and not args.quick
    arguments = " ".join(sys.argv[1:] if argv is None else argv)

    load_start = os.getloadavg()[0]  # other work on the machine skews every figure
    csv = lineitem_csv(args.scale)
    csv_mb = csv.stat().st_size / 1e6
    _, checksum = verify_checksum(csv, args.scale)
    print(f"data: {csv.relative_to(ROOT)}, {csv_mb:,.0f} MB, {checksum}; load {load_start:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="dg-layout-", dir=csv.parent) as tmp:
        figures = measure(csv, Path(tmp), candidates(args.quick), args.runs, args.ingest_runs)
    load_end = os.getloadavg()[0]

    table = rows(figures, csv_mb)
    print()
    print(text_table(HEADERS, table))
    print(f"\n1-minute load average {load_start:.1f} at the start, {load_end:.1f} at the end")
    if record:
        body = "\n\n".join(
            [
                f"Command: `./dg bench parquet_layout {arguments}` (or `.venv/bin/python "
                f"bench/parquet_layout.py {arguments}`) — {today()}  \n"
                f"Machine: {machine()}; DuckDB {duckdb.__version__}; 1-minute load average "
                f"{load_start:.1f} at the start, {load_end:.1f} at the end  \n"
                f"Data: TPC-H lineitem SF{scale_label(args.scale)} from tpchgen-cli, {csv_mb:,.0f} MB CSV, "
                f"{checksum}  \n"
                f"Q1: medians of {args.runs} rounds after one warm-up, each round querying every file once "
                f"(in-process DuckDB, {THREADS} threads, one connection per file); ingest: median of "
                f"{args.ingest_runs} writes with {THREADS} threads. Every file gives the baseline's Q1 "
                f"answer. Default layout now: {DEFAULT_CODEC}, {ROW_GROUP_ROWS:,} rows per group, "
                "dictionaries `auto`, pages `chunk`.",
                markdown_table(HEADERS, table),
                "Writers: *canonical* is `csv_to_parquet` on its fast path (Arrow's writer; every import "
                "or stream part written in the canonical forms), *strict* the same with the fast path off "
                "(DuckDB's `COPY`; other files, buffered appends, schema-change rewrites), *connector* "
                f"`BatchFiles` fed {CONNECTOR_BATCH_ROWS:,}-row batches read from the canonical file "
                "(its time is not a CSV conversion). Dictionary `auto` encodes the columns whose first "
                "10,000 rows repeat values; DuckDB's writer makes its own choice. Pages `chunk`: one data page per "
                "column chunk (up to 8 MiB), as DuckDB writes; `arrow`: Arrow's default, a page every "
                "20,000 rows or 1 MiB.",
            ]
        )
        record_section(HEADING, body)
        print(f"\nrecorded in {Path('bench/RESULTS.md')}")


if __name__ == "__main__":
    main()
