"""The file cache: read-through, bounded by LRU, never evicting a pinned file, one download per file."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from datagrove.tables.file_cache import TMP_PREFIX, FileCache


class Origin:
    """Objects of ``size`` bytes whose content is derived from their URI; counts downloads."""

    def __init__(self, size: int = 100, delay: float = 0.0) -> None:
        self.size = size
        self.delay = delay
        self.fetches: Counter[str] = Counter()
        self._lock = threading.Lock()

    def content(self, uri: str) -> bytes:
        return (uri.encode() * self.size)[: self.size]

    def fetch(self, uri: str, target: Path) -> None:
        with self._lock:
            self.fetches[uri] += 1
        time.sleep(self.delay)
        target.write_bytes(self.content(uri))


def use(cache: FileCache, uris: list[str]) -> None:
    """One read of ``uris``: pin, then unpin."""
    cache.pin(uris)
    cache.unpin(uris)


def test_a_pinned_uri_reads_as_the_object_and_is_downloaded_once(tmp_path: Path) -> None:
    origin = Origin()
    cache = FileCache(tmp_path, max_bytes=10_000, fetch=origin.fetch)
    for _ in range(3):
        [path] = cache.pin(["s3://b/a.parquet"])
        assert Path(path).read_bytes() == origin.content("s3://b/a.parquet")
        assert path.endswith(".parquet")
        cache.unpin(["s3://b/a.parquet"])
    assert origin.fetches["s3://b/a.parquet"] == 1


def test_the_least_recently_used_files_go_once_the_cache_is_over_its_size(tmp_path: Path) -> None:
    origin = Origin(size=100)
    cache = FileCache(tmp_path, max_bytes=300, fetch=origin.fetch)
    for name in "abc":
        use(cache, [f"s3://b/{name}"])
    use(cache, ["s3://b/a"])  # a is now the most recent
    use(cache, ["s3://b/d"])  # evicts b, the least recent
    assert cache.size_bytes == 300
    assert len(list(tmp_path.iterdir())) == 3
    use(cache, ["s3://b/a", "s3://b/c", "s3://b/d"])
    use(cache, ["s3://b/b"])
    assert origin.fetches == Counter({"s3://b/a": 1, "s3://b/b": 2, "s3://b/c": 1, "s3://b/d": 1})


def test_a_pinned_file_is_never_evicted_and_the_cache_shrinks_once_it_is_unpinned(tmp_path: Path) -> None:
    origin = Origin(size=100)
    cache = FileCache(tmp_path, max_bytes=150, fetch=origin.fetch)
    held = cache.pin(["s3://b/one", "s3://b/two"])  # a query over both: 200 bytes, over the bound
    assert all(Path(p).exists() for p in held)
    assert cache.size_bytes == 200
    other = cache.pin(["s3://b/three"])
    assert all(Path(p).exists() for p in held + other)
    cache.unpin(["s3://b/one", "s3://b/two"])
    assert cache.size_bytes <= 150
    assert Path(other[0]).exists()  # still pinned
    cache.unpin(["s3://b/three"])
    assert cache.size_bytes <= 150


def test_a_file_pinned_twice_stays_until_both_unpin(tmp_path: Path) -> None:
    origin = Origin(size=100)
    cache = FileCache(tmp_path, max_bytes=50, fetch=origin.fetch)
    [path] = cache.pin(["s3://b/x"])
    cache.pin(["s3://b/x"])
    cache.unpin(["s3://b/x"])
    assert Path(path).exists()
    cache.unpin(["s3://b/x"])
    assert not Path(path).exists()


def test_concurrent_readers_of_one_missing_file_share_one_download(tmp_path: Path) -> None:
    origin = Origin(size=1000, delay=0.2)
    cache = FileCache(tmp_path, max_bytes=1_000_000, fetch=origin.fetch)
    uris = [f"s3://b/{n}.parquet" for n in range(4)]
    results: list[list[str]] = []
    lock = threading.Lock()

    def read() -> None:
        paths = cache.pin(uris)
        contents = [Path(p).read_bytes() for p in paths]
        assert contents == [origin.content(u) for u in uris]
        with lock:
            results.append(paths)
        cache.unpin(uris)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert all(origin.fetches[u] == 1 for u in uris)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_a_failed_download_leaves_no_file_and_nothing_pinned(tmp_path: Path) -> None:
    def broken(uri: str, target: Path) -> None:
        target.write_bytes(b"half")
        raise OSError("connection reset")

    cache = FileCache(tmp_path, max_bytes=1000, fetch=broken)
    try:
        cache.pin(["s3://b/x"])
    except OSError:
        pass
    else:
        raise AssertionError("the download error was swallowed")
    assert list(tmp_path.iterdir()) == []
    assert cache.size_bytes == 0


def test_a_cache_sharing_the_directory_adopts_files_another_process_downloaded(tmp_path: Path) -> None:
    first, second = Origin(), Origin()
    FileCache(tmp_path, max_bytes=10_000, fetch=first.fetch).pin(["s3://b/shared"])
    (tmp_path / f"{TMP_PREFIX}stale").write_bytes(b"x")  # another process's download in flight
    later = FileCache(tmp_path, max_bytes=10_000, fetch=second.fetch)
    [path] = later.pin(["s3://b/shared"])
    assert Path(path).read_bytes() == first.content("s3://b/shared")
    assert second.fetches["s3://b/shared"] == 0
    assert (tmp_path / f"{TMP_PREFIX}stale").exists()  # young: left to its writer
    assert later.size_bytes == 100


def test_a_file_removed_behind_the_caches_back_is_downloaded_again(tmp_path: Path) -> None:
    origin = Origin()
    cache = FileCache(tmp_path, max_bytes=10_000, fetch=origin.fetch)
    [path] = cache.pin(["s3://b/x"])
    cache.unpin(["s3://b/x"])
    Path(path).unlink()
    [again] = cache.pin(["s3://b/x"])
    assert Path(again).read_bytes() == origin.content("s3://b/x")
    assert origin.fetches["s3://b/x"] == 2
