"""``ParquetLayout``: how every Parquet data file Datagrove writes is laid out.

One value, built once from the settings (``parquet_codec``) in the composition root and handed by
keyword to each writer: the CSV conversions (``csv_ingest``'s DuckDB COPY and ``csv_canonical``'s
Arrow writer), connector runs (``batch_files``), buffered one-row appends (``buffered``) and the
schema-change rewrite (``store``). Files written with any layout are read alike; a layout only
trades query speed against file size and write time (``bench/parquet_layout.py`` measures it,
``bench/RESULTS.md`` records why the defaults are what they are).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Codec = Literal["snappy", "zstd", "lz4", "uncompressed"]
CODECS: tuple[Codec, ...] = ("snappy", "zstd", "lz4", "uncompressed")
# Measured on TPC-H lineitem SF1 (bench/RESULTS.md, "Parquet layout"): snappy files scan ~15 %
# cheaper than zstd ones (which are ~22 % smaller) and every Parquet engine reads them; lz4
# (LZ4_RAW) scans a few % faster still but is not yet read by every engine that reads Iceberg.
DEFAULT_CODEC: Codec = "snappy"
# DuckDB's own row group size. DuckDB scans a file with one thread per row group, so groups must
# be many; larger ones (1M rows) scanned no faster and hold 8x the rows in a writer's memory.
ROW_GROUP_ROWS = 122_880

Dictionary = Literal["auto", "all", "none"]
# How the Arrow writers cut a column chunk into data pages. Arrow's own default is a page every
# 20,000 rows or 1 MiB; DuckDB writes one page per column chunk, and its reader scanned Arrow's
# files ~7-15 % slower in CPU for that alone (bench/RESULTS.md). "chunk" writes DuckDB's way:
# only the byte limit cuts a page (no row limit, since the canonical conversion's row groups run
# past row_group_rows by up to one Arrow block); "arrow" keeps Arrow's default, for the benchmark.
Pages = Literal["chunk", "arrow"]
ARROW_PAGE_BYTES = 8 * 1024 * 1024
ARROW_PAGE_ROWS = 2**31 - 1


@dataclass(frozen=True)
class ParquetLayout:
    """``codec`` compresses every column chunk; a row group holds ``row_group_rows`` rows (the
    last of a file fewer). ``dictionary`` is for the Arrow writers: ``auto`` encodes the columns
    whose first rows repeat values (DuckDB's writer makes that call itself), ``all`` or ``none``
    exist for the benchmark. ``pages`` is for the Arrow writers too (see ``Pages``)."""

    codec: Codec = DEFAULT_CODEC
    row_group_rows: int = ROW_GROUP_ROWS
    dictionary: Dictionary = "auto"
    pages: Pages = "chunk"

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"unknown Parquet codec {self.codec!r}; one of {', '.join(CODECS)}")
        if self.row_group_rows < 1:
            raise ValueError("row_group_rows must be at least 1")

    def duckdb_copy_options(self) -> str:
        """The options of a DuckDB ``COPY … TO`` that writes this layout."""
        return f"FORMAT parquet, COMPRESSION {self.codec}, ROW_GROUP_SIZE {int(self.row_group_rows)}"

    @property
    def arrow_compression(self) -> str:
        """The codec as pyarrow's ``ParquetWriter(compression=…)`` names it."""
        return "none" if self.codec == "uncompressed" else self.codec
