"""Every Parquet data file Datagrove writes carries the Iceberg field IDs of its table, so engines
that find columns by ID (Daft, Spark, Trino) read them; a file written for an earlier schema is
refused rather than read as nulls."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datagrove.errors import Conflict
from datagrove.tables.batch_files import BatchFiles
from datagrove.tables.buffered import BufferedRows, write_buffered
from datagrove.tables.csv_ingest import csv_to_parquet
from datagrove.tables.field_ids import of_arrow_schema
from datagrove.tables.maintenance import compact, plan_compaction
from datagrove.tables.store import TableStore
from datagrove.tables.types import Column, ColumnType

COLUMNS = [Column("n", ColumnType.LONG), Column("it's", ColumnType.STRING)]


def ids(path: Path) -> tuple[int | None, ...]:
    return of_arrow_schema(pq.read_schema(path))


def csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_csv_conversion_writes_the_field_ids_it_is_given(tmp_path: Path, fast_path: bool) -> None:
    source = csv(tmp_path, "1,a\n2,b\n")
    written = csv_to_parquet(source, tmp_path / "out.parquet", COLUMNS, fast_path=fast_path, field_ids=(4, 9))
    assert ids(written.path) == (4, 9)
    plain = csv_to_parquet(source, tmp_path / "plain.parquet", COLUMNS, fast_path=fast_path)
    assert ids(plain.path) == (1, 2)


def test_connector_batches_and_buffered_rows_carry_field_ids(tmp_path: Path) -> None:
    files = BatchFiles(tmp_path / "runs", COLUMNS, rows_per_file=10, field_ids=(3, 5))
    files.write(pa.record_batch({"n": pa.array([1], pa.int64()), "it's": pa.array(["x"])}))
    [written] = files.finish()
    assert ids(written.path) == (3, 5)
    older = (Column("n", ColumnType.LONG),)
    batches = [BufferedRows(1, tuple(COLUMNS), "1,a\n"), BufferedRows(2, older, "2\n")]
    same, conformed = write_buffered(batches, COLUMNS, tmp_path, field_ids=(3, 5))
    assert ids(same) == ids(conformed) == (3, 5)


def test_after_a_schema_change_new_files_carry_the_tables_new_ids_and_old_ones_are_refused(
    tmp_path: Path,
) -> None:
    store = TableStore(
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse_dir=tmp_path / "warehouse",
        staging_dir=tmp_path / "staging",
    )
    store.create_table("d", COLUMNS)
    first = csv_to_parquet(csv(tmp_path, "1,a\n"), tmp_path / "1.parquet", COLUMNS)
    store.commit_files("d", [first.path], replace=False)
    changed = [Column("n", ColumnType.STRING), Column("it's", ColumnType.STRING)]
    store.change_schema("d", COLUMNS, changed)
    table_ids = store.field_ids("d", changed)
    assert table_ids == (3, 2)  # n got a new ID with its new type
    assert [ids(Path(f)) for f in store.snapshot("d").files] == [table_ids]  # the rewrite too

    stale = csv_to_parquet(csv(tmp_path, "x,b\n"), tmp_path / "2.parquet", changed)  # IDs 1..n
    with pytest.raises(Conflict, match="earlier schema"):
        store.commit_files("d", [stale.path], replace=False)
    fresh = csv_to_parquet(csv(tmp_path, "y,c\n"), tmp_path / "3.parquet", changed, field_ids=table_ids)
    store.commit_files("d", [fresh.path], replace=False)
    table = store.load_table("d")
    assert sorted(table.scan().to_arrow().column("n").to_pylist()) == ["1", "y"]


def test_a_restore_across_a_type_change_and_back_gives_the_old_files_the_current_ids(tmp_path: Path) -> None:
    store = TableStore(
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse_dir=tmp_path / "warehouse",
        staging_dir=tmp_path / "staging",
    )
    store.create_table("d", COLUMNS)
    first = csv_to_parquet(csv(tmp_path, "1,a\n2,b\n"), tmp_path / "1.parquet", COLUMNS)
    store.commit_files("d", [first.path], replace=False)
    version = store.versions("d")[0].snapshot_id
    as_text = [Column("n", ColumnType.STRING), COLUMNS[1]]
    store.change_schema("d", COLUMNS, as_text)
    store.change_schema("d", as_text, COLUMNS)
    assert store.field_ids("d", COLUMNS) == (4, 2)  # n: 1, then 3 as text, then 4 as a number again
    store.restore_version("d", version, appended_through=0, snapshot_properties={})
    [file] = store.snapshot("d").files
    schema = pq.read_schema(file)
    assert dict(zip(schema.names, of_arrow_schema(schema), strict=True)) == {"n": 4, "it's": 2}
    # PyIceberg reads by ID: with the old file's ID 1 the column would read as nulls.
    assert sorted(store.load_table("d").scan().to_arrow().column("n").to_pylist()) == [1, 2]


def test_compaction_writes_the_tables_field_ids_even_from_files_that_had_none(tmp_path: Path) -> None:
    store = TableStore(
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse_dir=tmp_path / "warehouse",
        staging_dir=tmp_path / "staging",
    )
    store.create_table("d", COLUMNS)
    for index in range(3):  # as a release before field IDs wrote them: no IDs at all
        path = tmp_path / f"old-{index}.parquet"
        pq.write_table(pa.table({"n": pa.array([index], pa.int64()), "it's": pa.array(["x"])}), path)
        store.commit_files("d", [path], replace=False)
    plan = plan_compaction(store, "d", target_bytes=1 << 20, min_small_files=1)
    assert compact(store, "d", plan, COLUMNS, staging=tmp_path) == 1
    [file] = store.snapshot("d").files
    assert ids(Path(file)) == (1, 2)
