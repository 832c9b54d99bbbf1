"""Where the sandbox's DuckDB databases come from and go to.

Creating a DuckDB database costs ~12 ms (it registers every built-in function), closing one ~4 ms,
and a new database reads the dataset's files without the caches of a used one (Parquet footers,
the file bytes of ``enable_external_file_cache``): together a third of a short query's time.
Two things take that off the request's path:

- ``SPARES``: new databases made ahead of time by a background thread, and used ones closed by
  another, for queries that need a database no idle one matches.
- ``IDLE``: locked databases that served a query and may serve another that would see exactly the
  same. What a locked database can see is its identity (``SandboxIdentity``): the views' SQL
  (which carries the dataset's files and the row-level policy of the user), the files it may read
  and its engine limits. A query takes an idle database of its own identity or none, so a user
  never gets one built for another policy. At most ``capacity`` wait (least recently used go
  first), each holding at most its memory limit; 0 turns reuse off.

``datagrove.tables.sandbox`` decides when a used database may come back (``Sandbox.release``).
"""

from __future__ import annotations

import atexit
import os
import queue
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb

#: Idle locked databases kept by default (``DATAGROVE_QUERY_SANDBOX_POOL``).
DEFAULT_IDLE = 4


@dataclass(frozen=True)
class SandboxIdentity:
    """Everything a locked database can see or is bounded by; two queries with equal identities
    would get databases that differ in nothing they could observe but earlier queries' caches."""

    views: tuple[tuple[str, str], ...]
    files: tuple[str, ...]
    threads: int
    memory_limit: str
    spill_limit: str | None = None  # None: the database cannot spill


class SpillDirectories:
    """Each locked database that may spill has a directory of its own (``<pid>-<random>`` under the
    spill root), removed once the database is closed: DuckDB removes a temporary directory it
    made, and this removes what a failure may have left. A process that died leaves its
    directories behind; the next process on the data directory removes them (``remove_stale``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_database: dict[int, str] = {}  # id() of an open connection -> its directory

    def assign(self, con: duckdb.DuckDBPyConnection, root: str) -> str:
        path = os.path.join(root, f"{os.getpid()}-{os.urandom(8).hex()}")
        with self._lock:
            self._by_database[id(con)] = path
        return path

    def close(self, con: duckdb.DuckDBPyConnection) -> None:
        """Close ``con`` and remove its spill directory, if it has one."""
        con.close()
        with self._lock:
            path = self._by_database.pop(id(con), None)  # con is alive: its id is still its own
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def remove_stale(root: Path) -> None:
        """Remove the spill directories under ``root`` of processes that are no longer running."""
        if not root.is_dir():
            return
        for entry in root.iterdir():
            pid = entry.name.partition("-")[0]
            if pid.isdigit() and not _running(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


class SpareDatabases:
    """Fresh in-memory DuckDB databases made ahead of time, and used ones closed afterwards.

    Only the creating and the closing move off the request's path, to two background threads that
    start on first use.
    """

    def __init__(self, ready: int = 2) -> None:
        self._ready: queue.Queue[duckdb.DuckDBPyConnection] = queue.Queue(maxsize=ready)
        # None asks the closing thread to stop.
        self._used: queue.SimpleQueue[duckdb.DuckDBPyConnection | None] = queue.SimpleQueue()
        self._started = False
        self._stopping = False
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def take(self) -> duckdb.DuckDBPyConnection:
        self._start()
        try:
            return self._ready.get_nowait()
        except queue.Empty:
            return duckdb.connect(":memory:")

    def discard(self, con: duckdb.DuckDBPyConnection) -> None:
        self._used.put(con)

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        self._threads = [
            threading.Thread(target=self._fill, name="duckdb-spares", daemon=True),
            threading.Thread(target=self._close, name="duckdb-closer", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        atexit.register(self._shutdown)

    def _fill(self) -> None:
        while not self._stopping:
            con = duckdb.connect(":memory:")
            while not self._stopping:
                try:
                    self._ready.put(con, timeout=0.5)  # waits while enough are ready
                    break
                except queue.Full:
                    continue
            else:
                con.close()

    def _close(self) -> None:
        while (con := self._used.get()) is not None:
            SPILL.close(con)

    def _shutdown(self) -> None:
        """Close what is left when the process exits (DuckDB complains about open databases).

        Both threads are stopped and joined first: a daemon thread still inside DuckDB's native
        code when the interpreter finalizes is unwound through C++ frames that do not allow it,
        and the process aborts ("FATAL: exception not rethrown", exit status 134).
        """
        self._stopping = True
        IDLE.resize(0)
        self._used.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        while True:
            try:
                self._ready.get_nowait().close()
            except queue.Empty:
                break
        while True:
            try:
                con = self._used.get_nowait()
            except queue.Empty:
                break
            if con is not None:
                SPILL.close(con)


class IdleSandboxes:
    """Locked databases waiting for a query of their identity; at most ``capacity``, least recently
    returned dropped first (closed off the request's path)."""

    def __init__(self, capacity: int = DEFAULT_IDLE) -> None:
        self._capacity = capacity
        self._idle: list[tuple[SandboxIdentity, duckdb.DuckDBPyConnection]] = []  # oldest first
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._capacity

    def take(self, identity: SandboxIdentity) -> duckdb.DuckDBPyConnection | None:
        """An idle database of ``identity`` (the most recently returned), now the caller's; or None.

        On a miss (the caller is about to pay for a new database anyway) idle databases whose files
        have gone since they were returned are closed: no query can match them any more.
        """
        with self._lock:
            for index in range(len(self._idle) - 1, -1, -1):
                if self._idle[index][0] == identity:
                    return self._idle.pop(index)[1]
            kept: list[tuple[SandboxIdentity, duckdb.DuckDBPyConnection]] = []
            stale: list[tuple[SandboxIdentity, duckdb.DuckDBPyConnection]] = []
            for entry in self._idle:
                (kept if _files_exist(entry[0]) else stale).append(entry)
            self._idle = kept
        for _, old in stale:
            SPARES.discard(old)
        return None

    def put(self, identity: SandboxIdentity, con: duckdb.DuckDBPyConnection) -> None:
        """Keep ``con`` (locked, of ``identity``, used cleanly) for a later query; the caller lets go
        of it. Any of its files gone (removed since: a read area, an evicted cache copy, a file of a
        past snapshot) makes it worthless, so it is closed instead."""
        if self._capacity <= 0 or not _files_exist(identity):
            SPARES.discard(con)
            return
        with self._lock:
            self._idle.append((identity, con))
            dropped, self._idle = self._idle[: -self._capacity], self._idle[-self._capacity :]
        for _, old in dropped:
            SPARES.discard(old)

    def resize(self, capacity: int) -> None:
        """Keep at most ``capacity`` idle databases from now on (0: none, reuse is off)."""
        with self._lock:
            self._capacity = max(capacity, 0)
            keep = self._idle[len(self._idle) - self._capacity :] if self._capacity else []
            dropped = self._idle[: len(self._idle) - len(keep)]
            self._idle = keep
        for _, old in dropped:
            SPARES.discard(old)

    def __len__(self) -> int:
        with self._lock:
            return len(self._idle)


def _files_exist(identity: SandboxIdentity) -> bool:
    return all(os.path.exists(path) for path in identity.files)


SPILL = SpillDirectories()
SPARES = SpareDatabases()
IDLE = IdleSandboxes()


def keep_idle(capacity: int) -> None:
    """Set how many used locked databases this process keeps for reuse (the composition root calls
    this with ``DATAGROVE_QUERY_SANDBOX_POOL``)."""
    IDLE.resize(capacity)
