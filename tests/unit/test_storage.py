"""``Storage`` behaves alike on a local directory and on an S3 bucket (moto)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from datagrove.errors import DatagroveError
from datagrove.tables import storage as storage_module
from datagrove.tables.storage import S3Options, Storage
from tests.support.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return Storage.local(tmp_path / "store")
    moto: MotoServer = request.getfixturevalue("moto")
    options = S3Options(moto.endpoint, REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY, path_style=True)
    return Storage.s3(f"s3://{moto.new_bucket()}/prefix", options)


def local_file(directory: Path, name: str, content: bytes) -> Path:
    path = directory / name
    path.write_bytes(content)
    return path


def test_a_file_put_moved_downloaded_and_deleted(storage: Storage, tmp_path: Path) -> None:
    source = local_file(tmp_path, "a.parquet", b"abc" * 1000)
    staged, placed = storage.uri("staging", "1", "a.parquet"), storage.uri("warehouse", "t", "a.parquet")
    storage.put(source, staged)
    assert not source.exists()
    assert storage.size(staged) == 3000 and storage.exists(staged)
    storage.move(staged, placed)
    assert not storage.exists(staged) and storage.size(placed) == 3000
    storage.download(placed, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b"abc" * 1000
    with storage.open(placed) as data:
        assert data.read(3) == b"abc"
    storage.delete(placed)
    storage.delete(placed)  # a missing object is fine
    assert storage.size(placed) is None


def test_listing_and_deleting_a_tree(storage: Storage, tmp_path: Path) -> None:
    for name in ("7/a", "7/b", "8/c"):
        storage.put(local_file(tmp_path, "f", name.encode()), storage.uri("staging", name))
    assert sorted(u.rsplit("/", 1)[-1] for u in storage.list(storage.uri("staging"), recursive=False)) == [
        "7",
        "8",
    ]
    assert len(storage.list(storage.uri("staging"))) == 3
    storage.delete_tree(storage.uri("staging", "7"))
    assert [u.rsplit("/", 1)[-1] for u in storage.list(storage.uri("staging"))] == ["c"]
    storage.delete_tree(storage.uri("nothing", "here"))
    assert storage.list(storage.uri("nothing")) == []


def test_a_large_object_downloads_whole_in_ranges(
    storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage_module, "RANGE_BYTES", 1000)
    content = os.urandom(10_500)
    storage.put(local_file(tmp_path, "big", content), storage.uri("big"))
    storage.download(storage.uri("big"), tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == content


def test_the_secret_key_is_in_no_representation() -> None:
    options = S3Options("http://127.0.0.1:1", REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY, path_style=True)
    storage = Storage.s3("s3://bucket/p", options)
    assert SECRET_ACCESS_KEY not in repr(options) + repr(storage)
    assert storage.iceberg_properties()["s3.secret-access-key"] == SECRET_ACCESS_KEY  # for pyiceberg only


def test_a_missing_staged_object_is_a_storage_error_not_a_crash(storage: Storage) -> None:
    with pytest.raises(storage_module.StorageError):
        storage.move(storage.uri("no", "such"), storage.uri("other"))


def test_a_uri_of_the_other_kind_of_storage_is_refused(storage: Storage) -> None:
    foreign = "file:///etc/hostname" if not storage.is_local else "s3://bucket/key"
    with pytest.raises(DatagroveError, match="not in this server's storage"):
        storage.size(foreign)
