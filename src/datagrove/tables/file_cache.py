"""``FileCache``: local copies of data files kept in object storage, for DuckDB to read.

DuckDB here has no ``httpfs``, and the query sandbox must hand it local paths only (user SQL can
reach no URL and no credential). Iceberg data files are immutable: a URI's content never changes,
so a copy is correct for as long as it exists, and the cache never has to check for staleness.

- Read-through: ``pin(uris)`` returns a local path per URI, downloading the missing ones. Each
  URI is downloaded once at a time in this process (others asking wait for that download).
- Bounded: once the files exceed ``max_bytes``, the least recently pinned are removed, never one
  that is pinned (a running query or export holds it until ``unpin``). While pinned files alone
  exceed the bound the cache grows past it, rather than failing a query.
- Shared directory: a file is downloaded to a temporary name and renamed into place, so another
  process sharing the directory sees a whole file or none; an existing file is adopted as is.
  Pins are per process: a process may remove a file another one has pinned (give each node its
  own data directory, as the multi-node setup does).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

TMP_PREFIX = ".tmp-"
STALE_TMP_SECONDS = 3600  # a download untouched this long belongs to a process that died


class FileCache:
    def __init__(self, directory: Path, *, max_bytes: int, fetch: Callable[[str, Path], None]) -> None:
        """``fetch(uri, path)`` writes the object at ``uri`` into the local file ``path``."""
        directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._max_bytes = max_bytes
        self._fetch = fetch
        self._lock = threading.Lock()
        self._sizes: OrderedDict[str, int] = OrderedDict()  # file name -> bytes, least recent first
        self._pins: dict[str, int] = {}
        self._filling: dict[str, threading.Lock] = {}
        self._adopt_existing()

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def pin(self, uris: Sequence[str]) -> list[str]:
        """Local paths of ``uris`` (in order), each held until ``unpin`` with the same URIs; on an
        error nothing stays pinned."""
        paths: list[str] = []
        try:
            for uri in uris:
                paths.append(self._pin_one(uri))
        except BaseException:
            self.unpin(uris[: len(paths)])
            raise
        self._evict()
        return paths

    def unpin(self, uris: Sequence[str]) -> None:
        with self._lock:
            for uri in uris:
                name = _name(uri)
                left = self._pins.get(name, 0) - 1
                if left > 0:
                    self._pins[name] = left
                else:
                    self._pins.pop(name, None)
        self._evict()

    def clear(self) -> None:
        """Remove every file that is not pinned."""
        with self._lock:
            for name in [n for n in self._sizes if n not in self._pins]:
                del self._sizes[name]
                (self._dir / name).unlink(missing_ok=True)

    # --- internals ------------------------------------------------------------------------------

    def _pin_one(self, uri: str) -> str:
        name = _name(uri)
        path = self._dir / name
        with self._lock:
            self._pins[name] = self._pins.get(name, 0) + 1
            filling = self._filling.setdefault(name, threading.Lock())
        try:
            with filling:  # one download per file at a time; the others wait and find it
                if name in self._sizes and path.exists():
                    with self._lock:
                        self._sizes.move_to_end(name)
                    return str(path)
                if not path.exists():  # a process sharing the directory may have fetched it
                    temp = self._dir / f"{TMP_PREFIX}{uuid.uuid4().hex}"
                    try:
                        self._fetch(uri, temp)
                        os.replace(temp, path)
                    finally:
                        temp.unlink(missing_ok=True)
                with self._lock:
                    self._sizes[name] = path.stat().st_size
                    self._sizes.move_to_end(name)
                return str(path)
        except BaseException:
            with self._lock:
                left = self._pins.get(name, 0) - 1
                if left > 0:
                    self._pins[name] = left
                else:
                    self._pins.pop(name, None)
            raise

    def _evict(self) -> None:
        with self._lock:
            total = sum(self._sizes.values())
            for name in list(self._sizes):
                if total <= self._max_bytes:
                    break
                if name in self._pins:
                    continue
                total -= self._sizes.pop(name)
                (self._dir / name).unlink(missing_ok=True)
                self._filling.pop(name, None)

    def _adopt_existing(self) -> None:
        """Files a previous run left are kept, oldest access first; half-written ones are removed."""
        found: list[tuple[float, str, int]] = []
        for entry in os.scandir(self._dir):
            if entry.name.startswith(TMP_PREFIX):
                # Another process sharing the directory may be writing it right now.
                if entry.stat().st_mtime < time.time() - STALE_TMP_SECONDS:
                    Path(entry.path).unlink(missing_ok=True)
            elif entry.is_file():
                stat = entry.stat()
                found.append((stat.st_atime, entry.name, stat.st_size))
        for _, name, size in sorted(found):
            self._sizes[name] = size
        self._evict()


def _name(uri: str) -> str:
    """A file name for ``uri``: its hash (names are flat and never collide), keeping the suffix."""
    return hashlib.sha256(uri.encode()).hexdigest()[:40] + Path(uri).suffix
