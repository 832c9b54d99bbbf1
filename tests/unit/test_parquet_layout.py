"""``ParquetLayout`` as each writer applies it: the codec, the row-group size and the dictionaries."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datagrove.settings import Settings
from datagrove.tables.batch_files import BatchFiles
from datagrove.tables.csv_ingest import csv_to_parquet
from datagrove.tables.parquet_layout import CODECS, DEFAULT_CODEC, ParquetLayout
from datagrove.tables.types import Column, ColumnType

COLUMNS = [Column("n", ColumnType.LONG), Column("s", ColumnType.STRING)]


def batch(start: int, rows: int) -> pa.RecordBatch:
    return pa.record_batch(
        [pa.array(range(start, start + rows), pa.int64()), pa.array([f"v{i % 3}" for i in range(rows)])],
        names=["n", "s"],
    )


def row_groups(path: Path) -> list[int]:
    metadata = pq.ParquetFile(path).metadata
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


def compression(path: Path) -> set[str]:
    metadata = pq.ParquetFile(path).metadata
    return {
        metadata.row_group(g).column(c).compression
        for g in range(metadata.num_row_groups)
        for c in range(metadata.num_columns)
    }


def test_the_settings_default_is_the_layouts_default():
    assert Settings.model_fields["parquet_codec"].default == DEFAULT_CODEC == ParquetLayout().codec


def test_an_unknown_codec_is_refused():
    with pytest.raises(ValueError, match="unknown Parquet codec"):
        ParquetLayout(codec="brotli")  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("fast_path", [True, False], ids=["canonical", "strict"])
def test_both_csv_conversions_write_the_codec_and_row_groups(tmp_path: Path, codec: str, fast_path: bool):
    source = tmp_path / "in.csv"
    source.write_bytes(b"".join(b"%d,v%d\n" % (n, n % 3) for n in range(2500)))
    layout = ParquetLayout(codec=codec, row_group_rows=1000)  # type: ignore[arg-type]
    written = csv_to_parquet(source, tmp_path / "out.parquet", COLUMNS, parquet=layout, fast_path=fast_path)
    assert written.canonical is fast_path
    assert compression(written.path) == {codec.upper()}
    # DuckDB cuts row groups at the layout's size (rounded to its 2,048-row vectors); Arrow's
    # reader at a whole block past it (a block holds all 2,500 rows here: tested with more rows
    # in test_csv_canonical).
    assert sum(row_groups(written.path)) == 2500
    if not fast_path:
        assert len(row_groups(written.path)) > 1


def test_connector_batches_are_gathered_into_row_groups_of_the_layout(tmp_path: Path):
    files = BatchFiles(
        tmp_path, COLUMNS, rows_per_file=10_000, parquet=ParquetLayout(codec="zstd", row_group_rows=2500)
    )
    for start in range(0, 12_000, 1000):  # twelve batches of 1,000 rows
        files.write(batch(start, 1000))
    first, second = files.finish()
    assert (first.rows, second.rows) == (10_000, 2000)
    assert row_groups(first.path) == [2500, 2500, 2500, 2500]
    assert row_groups(second.path) == [2000]
    assert compression(first.path) == compression(second.path) == {"ZSTD"}
    numbers = (
        pq.read_table(first.path).column("n").to_pylist() + pq.read_table(second.path).column("n").to_pylist()
    )
    assert numbers == list(range(12_000))


def test_a_batch_larger_than_a_row_group_is_split_across_groups(tmp_path: Path):
    files = BatchFiles(tmp_path, COLUMNS, rows_per_file=100_000, parquet=ParquetLayout(row_group_rows=3000))
    files.write(batch(0, 7000))
    (only,) = files.finish()
    assert row_groups(only.path) == [3000, 3000, 1000]


def test_connector_dictionaries_go_to_the_columns_that_repeat(tmp_path: Path):
    files = BatchFiles(tmp_path, COLUMNS, rows_per_file=100_000, parquet=ParquetLayout())
    files.write(batch(0, 5000))
    (only,) = files.finish()
    metadata = pq.ParquetFile(only.path).metadata.row_group(0)
    assert "RLE_DICTIONARY" in metadata.column(1).encodings  # s: three values
    assert "RLE_DICTIONARY" not in metadata.column(0).encodings  # n: every value distinct


def test_a_discarded_run_leaves_no_files(tmp_path: Path):
    files = BatchFiles(tmp_path, COLUMNS, rows_per_file=1500, parquet=ParquetLayout(row_group_rows=1000))
    files.write(batch(0, 2000))
    files.discard()
    assert list(tmp_path.iterdir()) == []


def data_pages(path: Path) -> dict[str, int]:
    """Data pages per column in the file's first row group, as DuckDB's reader sees them."""
    con = duckdb.connect()
    try:
        found = con.execute(
            "SELECT path_in_schema, encoding_stats FROM parquet_metadata(?) WHERE row_group_id = 0",
            [str(path)],
        ).fetchall()
    finally:
        con.close()
    return {
        name: sum(stat["count"] for stat in stats if stat["page_type"].startswith("DATA_PAGE"))
        for name, stats in found
    }


@pytest.mark.parametrize(("pages", "expected"), [("chunk", 1), ("arrow", 3)])
def test_the_arrow_writer_cuts_pages_as_the_layout_says(tmp_path: Path, pages: str, expected: int):
    source = tmp_path / "in.csv"
    source.write_bytes(b"".join(b"%d,v%d\n" % (n, n % 3) for n in range(50_000)))
    # Row groups of 40,000 rows: the canonical conversion's first one runs a block past that.
    layout = ParquetLayout(pages=pages, row_group_rows=40_000)  # type: ignore[arg-type]
    written = csv_to_parquet(source, tmp_path / "out.parquet", COLUMNS, parquet=layout)
    assert written.canonical
    # DuckDB writes one page per column chunk; Arrow by default one per 20,000 rows.
    assert row_groups(written.path)[0] > 40_000
    assert data_pages(written.path) == {"n": expected, "s": expected}
