"""The table store on both kinds of storage: the local default reads its files in place (no cache,
no copy); a bucket's files reach DuckDB as pinned local copies, released when the read ends."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datagrove.tables.file_cache import FileCache
from datagrove.tables.storage import S3Options, Storage
from datagrove.tables.store import TableStore
from datagrove.tables.types import Column, ColumnType
from tests.support.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer

COLUMNS = [Column("n", ColumnType.LONG)]


def parquet(directory: Path, name: str, values: list[int]) -> Path:
    path = directory / name
    pq.write_table(pa.table({"n": pa.array(values, pa.int64())}), path)
    return path


def test_local_storage_reads_the_tables_own_files_without_a_cache(tmp_path: Path) -> None:
    store = TableStore(
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse_dir=tmp_path / "warehouse",
        staging_dir=tmp_path / "staging",
    )
    store.create_table("d1", COLUMNS)
    store.commit_files("d1", [parquet(tmp_path, "a.parquet", [1, 2])], replace=False)
    [file] = store.snapshot("d1").files
    assert Path(file).is_file() and Path(file).is_relative_to(tmp_path / "warehouse")
    with contextlib.ExitStack() as holder:
        assert store.local_files([file], holder) == [file]
    assert store.stage_file(7, tmp_path / "x.parquet") == str(tmp_path / "x.parquet")


def test_bucket_storage_reads_pinned_copies_and_releases_them(tmp_path: Path, moto: MotoServer) -> None:
    bucket = moto.new_bucket()
    storage = Storage.s3(
        f"s3://{bucket}/p",
        S3Options(moto.endpoint, REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY, path_style=True),
    )
    cache = FileCache(tmp_path / "cache", max_bytes=1, fetch=storage.download)  # keeps only pinned files
    store = TableStore(
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse_dir=tmp_path / "warehouse",
        staging_dir=tmp_path / "staging",
        storage=storage,
        file_cache=cache,
    )
    store.create_table("d1", COLUMNS)
    staged = store.stage_file(3, parquet(store.execution_dir(3), "part.parquet", [5, 6, 7]))
    assert staged.startswith(f"s3://{bucket}/p/staging/executions/3/")
    store.commit_files("d1", [staged, parquet(tmp_path, "b.parquet", [8])], replace=False)
    assert not storage.exists(staged)
    files = store.snapshot("d1").files
    assert all(f.startswith(f"s3://{bucket}/p/warehouse/") for f in files)
    with contextlib.ExitStack() as holder:
        local = store.local_files(files, holder)
        assert [pq.read_table(p)["n"].to_pylist() for p in local] == [[5, 6, 7], [8]]
    assert cache.size_bytes == 0  # unpinned, and over the bound: gone
    assert not list((tmp_path / "warehouse").rglob("*.parquet"))
    store.drop_table("d1")
    assert moto.objects(bucket, "p/warehouse") == []


def test_a_bucket_without_a_file_cache_is_refused(tmp_path: Path) -> None:
    storage = Storage.s3("s3://b/p", S3Options("http://127.0.0.1:1", REGION, path_style=True))
    with pytest.raises(ValueError, match="file cache"):
        TableStore(
            catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
            warehouse_dir=tmp_path / "w",
            staging_dir=tmp_path / "s",
            storage=storage,
        )
