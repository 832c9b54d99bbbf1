"""``Storage`` behaves alike on a local directory and on an S3 bucket (moto)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from datagrove.errors import DatagroveError
from datagrove.tables import storage as storage_module
from datagrove.tables.storage import S3Options, Storage
from tests.support.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer
from tests.support.s3_in_process import InProcessMoto, moto_in_process


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


def test_a_listing_gives_each_files_size_and_placing_time(storage: Storage, tmp_path: Path) -> None:
    before = time.time() - 2  # S3 keeps whole seconds
    storage.put(local_file(tmp_path, "f", b"x" * 10), storage.uri("t", "data", "a.parquet"))
    storage.put(local_file(tmp_path, "g", b"y" * 20), storage.uri("t", "metadata", "m.json"))
    found = {o.uri.rsplit("/", 1)[-1]: o for o in storage.objects(storage.uri("t"))}
    assert {name: o.size for name, o in found.items()} == {"a.parquet": 10, "m.json": 20}
    assert all(before <= o.modified <= time.time() + 2 for o in found.values())
    assert storage.stat(storage.uri("t", "data", "a.parquet")) == found["a.parquet"]
    assert storage.stat(storage.uri("t", "nothing")) is None
    assert storage.objects(storage.uri("nothing", "here")) == []


@pytest.fixture(scope="module")
def moto_here() -> Iterator[InProcessMoto]:
    with moto_in_process() as running:
        yield running


def bucket_storage(moto: InProcessMoto) -> Storage:
    options = S3Options(moto.endpoint, REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY, path_style=True)
    return Storage.s3(f"s3://{moto.new_bucket()}/prefix", options)


def test_an_object_too_large_for_one_copy_request_is_moved_by_a_streamed_copy(
    moto_here: InProcessMoto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As S3 refuses CopyObject above 5 GiB, this moto refuses it above 3,000 bytes.
    storage = bucket_storage(moto_here)
    content = os.urandom(10_000)
    staged, placed = storage.uri("staging", "big.parquet"), storage.uri("warehouse", "big.parquet")
    storage.put(local_file(tmp_path, "big", content), staged)
    with moto_here.copies_refused_above(3000):
        with pytest.raises(storage_module.StorageError, match="copy source is larger"):
            storage.move(staged, placed)  # one CopyObject: what a part above 5 GiB would meet
        assert storage.exists(staged) and not storage.exists(placed)

        monkeypatch.setattr(storage_module, "COPY_OBJECT_MAX_BYTES", 3000)
        monkeypatch.setattr(storage_module, "COPY_CHUNK_BYTES", 1024)
        storage.move(staged, placed)
    assert not storage.exists(staged)
    storage.download(placed, tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == content
    small = storage.uri("staging", "small.parquet")  # still one request below the limit
    storage.put(local_file(tmp_path, "small", b"s" * 100), small)
    storage.move(small, storage.uri("warehouse", "small.parquet"))
    assert storage.size(storage.uri("warehouse", "small.parquet")) == 100
