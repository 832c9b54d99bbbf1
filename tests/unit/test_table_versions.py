"""A table's versions (``tables/versions.py``) over a real Iceberg table: one version per commit,
what made it, reading an earlier one and restoring it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datagrove.errors import VersionGone
from datagrove.tables.store import TableStore
from datagrove.tables.types import Column, ColumnType
from datagrove.tables.versions import MadeBy, made_by_properties

COLUMNS = [Column("n", ColumnType.LONG), Column("s", ColumnType.STRING)]


@pytest.fixture
def tables(tmp_path: Path) -> TableStore:
    store = TableStore(
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse_dir=tmp_path / "warehouse",
        staging_dir=tmp_path / "staging",
    )
    store.create_table("d", COLUMNS)
    return store


def part(tmp_path: Path, *numbers: int) -> Path:
    path = tmp_path / f"part-{'-'.join(map(str, numbers))}.parquet"
    pq.write_table(pa.table({"n": pa.array(numbers, pa.int64()), "s": [str(n) for n in numbers]}), path)
    return path


def rows(files: tuple[str, ...] | list[str]) -> list[int]:
    if not files:
        return []
    return [r[0] for r in duckdb.sql(f"SELECT n FROM read_parquet({list(files)})").fetchall()]


def test_each_commit_is_one_version_and_says_what_made_it(tables: TableStore, tmp_path: Path):
    tables.commit_files("d", [part(tmp_path, 1, 2)], replace=False)  # an import before made-by existed
    tables.commit_files(
        "d", [part(tmp_path, 3)], replace=False, snapshot_properties=made_by_properties("import", user_id=7)
    )
    tables.commit_files("d", [part(tmp_path, 4)], replace=True, commit_key="01796214508967769179-e42")
    tables.commit_files("d", [part(tmp_path, 5)], replace=False, commit_key="fold-12", appended_through=12)
    wider = [*COLUMNS, Column("x", ColumnType.DOUBLE)]
    tables.change_schema("d", COLUMNS, wider, snapshot_properties=made_by_properties("schema", user_id=7))
    history = tables.versions("d")
    assert [(v.operation, v.rows_added, v.rows_removed, v.rows) for v in history] == [
        ("replace", 2, 2, 2),
        ("append", 1, 0, 2),
        ("replace", 1, 3, 1),
        ("append", 1, 0, 3),
        ("append", 2, 0, 2),
    ]
    assert [v.made_by for v in history] == [
        MadeBy("schema", None, 7),
        MadeBy("fold", 12),
        MadeBy("execution", 42),
        MadeBy("import", None, 7),
        MadeBy("import"),
    ]
    assert [v.current for v in history] == [True, False, False, False, False]


def test_an_earlier_version_has_its_files_and_columns(tables: TableStore, tmp_path: Path):
    tables.commit_files("d", [part(tmp_path, 1, 2)], replace=False)
    tables.commit_files("d", [part(tmp_path, 3)], replace=False)
    second = tables.versions("d")[0].snapshot_id
    changed = [Column("s", ColumnType.STRING), Column("n", ColumnType.STRING)]
    tables.change_schema("d", COLUMNS, changed)
    past = tables.version("d", second, changed)
    assert rows(past.snapshot.files) == [1, 2, 3]
    assert past.columns == (Column("s", ColumnType.STRING), Column("n", ColumnType.LONG))
    with pytest.raises(VersionGone) as gone:
        tables.version("d", 12345, COLUMNS)
    assert gone.value.details == {"version": "12345"}


def test_a_restore_is_a_new_version_holding_exactly_the_old_files(tables: TableStore, tmp_path: Path):
    tables.commit_files("d", [part(tmp_path, 1, 2)], replace=False)
    first = tables.versions("d")[0].snapshot_id
    tables.commit_files("d", [part(tmp_path, 3)], replace=False)
    tables.commit_files("d", [part(tmp_path, 9)], replace=True)
    tables.commit_files("d", [part(tmp_path, 10)], replace=False)
    kept = tables.snapshot("d").files[0]
    state = tables.restore_version(
        "d", first, appended_through=5, snapshot_properties=made_by_properties("restore", made_id=first)
    )
    assert state.total_rows == 2 and state.appended_through == 5
    assert rows(tables.snapshot("d").files) == [1, 2]
    newest = tables.versions("d")[0]
    assert newest.made_by == MadeBy("restore", str(first)) and newest.current
    assert (newest.rows_added, newest.rows_removed) == (2, 2)
    # The replaced files stay for the versions that hold them.
    assert Path(kept).exists()
    assert len(tables.versions("d")) == 5


def test_a_restore_of_a_version_sharing_files_removes_only_what_came_after(
    tables: TableStore, tmp_path: Path
):
    tables.commit_files("d", [part(tmp_path, 1)], replace=False)
    tables.commit_files("d", [part(tmp_path, 2)], replace=False)
    second = tables.versions("d")[0].snapshot_id
    tables.commit_files("d", [part(tmp_path, 3)], replace=False)
    tables.restore_version("d", second, appended_through=0, snapshot_properties={})
    newest = tables.versions("d")[0]
    assert (newest.operation, newest.rows_added, newest.rows_removed, newest.rows) == ("overwrite", 0, 1, 2)
    assert rows(tables.snapshot("d").files) == [1, 2]


def test_a_restore_across_a_schema_change_and_back_describes_the_files_under_the_current_schema(
    tables: TableStore, tmp_path: Path
):
    tables.commit_files("d", [part(tmp_path, 1, 2)], replace=False)
    first = tables.versions("d")[0].snapshot_id
    as_text = [Column("n", ColumnType.STRING), Column("s", ColumnType.STRING)]
    tables.change_schema("d", COLUMNS, as_text)
    tables.change_schema("d", as_text, COLUMNS)
    tables.restore_version("d", first, appended_through=0, snapshot_properties={})
    assert rows(tables.snapshot("d").files) == [1, 2]
    assert tables.table_state("d").total_rows == 2
