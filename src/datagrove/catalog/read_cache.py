"""Catalog reads kept in memory, each valid for exactly one catalog version of the topics it depends on.

A cached read is answered from memory only inside a request that pinned a version
(``versions.pin_request``) and only while that version is the one the entry was read under. Any
write to the topic, on any node, bumps the version (``versions.watch_writes``), so the very next
request misses and reads again: a revoked token, a changed grant or a deleted dataset takes effect
at once. Outside a request (background jobs, the CLI) every read goes to the database.

The slow path is the definition: ``read()`` is what the catalog did before, and a hit returns what
``read()`` returned under the same version (the values are immutable domain records). Entries are
read *after* the version was read, so an entry is never older than the version it is filed under.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from datagrove.catalog.versions import current_pin

T = TypeVar("T")


class VersionedCache:
    """Up to ``max_entries`` reads of one kind; the whole cache is dropped when it is full (entries
    of an old version are dead weight, and most of a full cache is)."""

    def __init__(self, topics: tuple[str, ...], *, data: bool, max_entries: int = 10_000) -> None:
        """``topics``: what the reads depend on. ``data``: used only by requests that pinned with
        ``cache_data`` (reads that decide a write are never cached)."""
        self._topics = topics
        self._data = data
        self._max = max_entries
        self._entries: dict[Hashable, tuple[tuple[int, ...], object]] = {}

    def get(self, key: Hashable, read: Callable[[], T]) -> T:
        pin = current_pin()
        if pin is None or (self._data and not pin.cache_data):
            return read()
        stamp = pin.versions().of(self._topics)
        entry = self._entries.get(key)
        if entry is not None and entry[0] == stamp:
            return entry[1]  # type: ignore[return-value]
        value = read()
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (stamp, value)
        return value
