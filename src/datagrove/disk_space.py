"""A full disk, whichever layer hit it, as one error: ``InsufficientStorage`` (507).

The write paths (a part upload, an import, a fold of the append buffer, a commit) pass through the
OS, pyarrow, DuckDB, pyiceberg and the catalog database, and each says "the disk is full" its own
way: ``OSError`` with ``errno.ENOSPC`` (or ``EDQUOT``), an Arrow or DuckDB I/O error whose message
carries the OS's "No space left on device", SQLite's ``SQLITE_FULL`` ("database or disk is full",
usually wrapped by SQLAlchemy), PostgreSQL's SQLSTATE 53100 (``disk_full``). ``translate_disk_full``
turns any of them, also as the cause of another exception, into ``InsufficientStorage`` at the
write path's boundary, so the client gets a clear 507 rather than a 500, and callers that keep
state (a commit stays COMMITTING for a retry) can tell "try again later" from a real failure.

``require_free_space`` is the floor (setting ``min_free_disk_bytes``): a new upload is refused
while less than that is free, before the disk is completely full, so that the commits, folds and
catalog writes already under way still find room.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from datagrove.errors import DatagroveError, InsufficientStorage

log = logging.getLogger("datagrove.disk")

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# How the libraries spell it when they carry the OS's error as text (pyarrow, DuckDB, pyiceberg's
# FileIO) or report it themselves (SQLite, PostgreSQL).
DISK_FULL_TEXTS = (
    "no space left on device",
    "disk quota exceeded",
    "database or disk is full",
    "could not extend file",
)
POSTGRES_DISK_FULL = "53100"

FULL_MESSAGE = "the server's disk is full; nothing was written — try again once space is freed"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from or wraps, says the disk is full."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if _says_disk_full(current):
            return True
        pending.extend(_underlying(current))
    return False


def _says_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, InsufficientStorage):
        return True
    if isinstance(exc, DatagroveError):
        # Our own messages may quote client data ("value 'No space left on device' ..."): only
        # their causes count.
        return False
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return True
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return True
    if getattr(exc, "sqlstate", None) == POSTGRES_DISK_FULL:  # psycopg's DiskFull
        return True
    text = str(exc).lower()
    return any(marker in text for marker in DISK_FULL_TEXTS)


def _underlying(exc: BaseException) -> Iterable[BaseException]:
    """The exceptions ``exc`` carries: its cause or context, SQLAlchemy's ``orig``, a group's members."""
    for candidate in (exc.__cause__, exc.__context__, getattr(exc, "orig", None)):
        if isinstance(candidate, BaseException):
            yield candidate
    if isinstance(exc, BaseExceptionGroup):
        yield from exc.exceptions


@contextlib.contextmanager
def translate_disk_full(what: str) -> Iterator[None]:
    """Raise ``InsufficientStorage`` (naming ``what`` failed) for a disk-full error in the block;
    every other exception passes unchanged."""
    try:
        yield
    except InsufficientStorage:
        raise
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        log.warning("disk full", extra={"fields": {"during": what, "error": str(exc)[:300]}})
        raise InsufficientStorage(f"{what} failed: {FULL_MESSAGE}") from exc


def free_bytes(path: Path) -> int:
    """Bytes free for this process on the filesystem holding ``path`` (its nearest existing parent)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return shutil.disk_usage(Path.cwd()).free


def require_free_space(paths: Iterable[Path], *, floor: int, what: str) -> None:
    """Refuse ``what`` with ``InsufficientStorage`` while a filesystem holding one of ``paths`` has
    less than ``floor`` bytes free (0 turns the floor off)."""
    if floor <= 0:
        return
    for path in paths:
        free = free_bytes(path)
        if free < floor:
            log.warning(
                "refused: free disk space under the floor",
                extra={"fields": {"during": what, "path": str(path), "free_bytes": free, "floor": floor}},
            )
            raise InsufficientStorage(
                f"{what} refused: the server is low on disk space (under its min_free_disk_bytes "
                "floor); try again once space is freed"
            )
