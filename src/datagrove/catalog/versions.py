"""The catalog version: one counter per topic, bumped by every transaction that writes the topic's tables.

``watch_writes(engine)`` (installed by ``make_engine`` on every engine Datagrove opens) notes each
INSERT, UPDATE or DELETE on a watched table and, when the transaction commits, adds one to its
topics' rows of ``dg_catalog_version`` in that same transaction. A reader that sees a version
therefore sees every write that came before it, on this node or any other sharing the catalog, and
a cache entry read *after* reading version ``v`` is at least as new as ``v``
(``catalog/read_cache.py`` keys its entries so).

Why the bump happens at commit and one topic per statement, in a fixed order: on PostgreSQL the
UPDATE takes the topic row's lock until the commit. Taken last, it is never held while waiting for
another lock, so no two writers can deadlock on it; taken in one order, no two bumps can either.
The price is that commits writing one topic serialise for the moment of their commit.

Writes that do not go through an engine from ``make_engine`` (a hand-run SQL session, a restore
copied in by file) are not seen: restart the servers afterwards, or run any write through
``datagrove``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

ACCESS = "access"  # who someone is and what they may do
DATASETS = "datasets"  # datasets (their metadata, not their rows) and streams
EXECUTIONS = "executions"  # stream executions and their parts
TOPICS = (ACCESS, DATASETS, EXECUTIONS)

WATCHED = {
    "dg_users": ACCESS,
    "dg_oauth_clients": ACCESS,
    "dg_access_tokens": ACCESS,
    "dg_groups": ACCESS,
    "dg_group_members": ACCESS,
    "dg_dataset_permissions": ACCESS,
    "dg_policies": ACCESS,
    "dg_datasets": DATASETS,
    "dg_streams": DATASETS,
    "dg_executions": EXECUTIONS,
    "dg_parts": EXECUTIONS,
}

# The table a write statement changes, as every dialect Datagrove uses renders it (Core and text).
_WRITE = re.compile(
    r"""\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+["`]?(\w+)""",
    re.IGNORECASE,
)
_PENDING = "dg_pending_topics"  # key in a pooled connection's ``info``: topics written, not committed
_EXISTS = {
    "sqlite": "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dg_catalog_version'",
    "postgresql": "SELECT to_regclass('dg_catalog_version') IS NOT NULL",
}
_READ = "SELECT topic, version FROM dg_catalog_version"


@dataclass(frozen=True)
class Versions:
    """The catalog version as one read saw it."""

    access: int
    datasets: int
    executions: int

    def of(self, topics: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(getattr(self, topic) for topic in topics)


def read_versions(engine: sa.Engine) -> Versions:
    """The current version of every topic (one small read), through the DBAPI cursor of a pooled
    connection: SQLAlchemy's result machinery cost more than the read itself."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(_READ)
            found = dict(cursor.fetchall())
        finally:
            cursor.close()
    finally:
        raw.close()  # back to the pool, which ends the read's transaction
    return _versions(found)


class VersionReader:
    """``read()``: the current versions, as cheaply as the catalog allows. Every request asks.

    The read runs on connections of its own in autocommit mode: a pooled connection costs a
    checkout, a liveness ping and a rollback (on PostgreSQL three round trips where one is needed;
    on SQLite several times the read itself). On SQLite each thread keeps one; on PostgreSQL up to
    ``KEPT_IDLE`` are kept between reads, so that many threads do not hold many server connections.
    A connection that fails is dropped and the read tried once more on a new one (after a database
    restart every kept connection is dead)."""

    KEPT_IDLE = 4

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._local = threading.local()
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        # Shared reads (PostgreSQL): how many have started and finished, the last one's answer.
        self._round = threading.Condition()
        self._started = 0
        self._finished = 0
        self._reading = False
        self._last: Versions | None = None

    def read(self) -> Versions:
        if self._sqlite:
            return self._read_retrying()
        return self._shared_read()

    def _shared_read(self) -> Versions:
        """On PostgreSQL concurrent callers share reads: a caller takes the answer of the first
        read that *started after it called* (so it sees every write committed before its call, as
        its own read would), waiting for one in flight or starting the next. Under load that is one
        round trip for many requests instead of one each. A read that fails is tried again by the
        callers that waited for it, each leading in turn."""
        with self._round:
            wanted = self._started + 1  # a read in flight now started before this call
            while self._finished < wanted:
                if not self._reading:
                    self._reading = True
                    self._started += 1
                    this_round = self._started
                    break
                self._round.wait()
            else:
                assert self._last is not None
                return self._last
        answer: Versions | None = None
        try:
            answer = self._read_retrying()
            return answer
        finally:
            with self._round:
                self._reading = False
                if answer is not None:
                    self._last, self._finished = answer, this_round
                self._round.notify_all()

    def _read_retrying(self) -> Versions:
        try:
            return self._read()
        except self._engine.dialect.loaded_dbapi.Error:
            return self._read()  # the failed connection is gone; this one is new

    def _read(self) -> Versions:
        connection = self._take()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(_READ)
                found = dict(cursor.fetchall())
            finally:
                cursor.close()
        except BaseException:
            self._drop(connection)
            raise
        self._give_back(connection)
        return _versions(found)

    def _take(self) -> Any:
        if self._sqlite:
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = self._local.connection = self._connect()
            return connection
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _give_back(self, connection: Any) -> None:
        if self._sqlite:
            return
        with self._lock:
            if len(self._idle) < self.KEPT_IDLE:
                self._idle.append(connection)
                return
        connection.close()

    def _drop(self, connection: Any) -> None:
        if self._sqlite:
            self._local.connection = None
        with contextlib.suppress(Exception):
            connection.close()

    def _connect(self) -> Any:
        dialect = self._engine.dialect
        args, kwargs = dialect.create_connect_args(self._engine.url)
        connection = dialect.loaded_dbapi.connect(*args, **kwargs)
        if self._sqlite:
            connection.isolation_level = None  # autocommit: a SELECT leaves no transaction open
        else:
            connection.autocommit = True
        return connection


def _versions(found: dict[str, int]) -> Versions:
    return Versions(**{topic: int(found.get(topic, 0)) for topic in TOPICS})


_SCHEMA_CHANGE = re.compile(r"\s*(?:CREATE|DROP|ALTER)\s", re.IGNORECASE)
SCHEMA = "schema"  # what ``written_topic`` says of a statement that changes tables (migrations)


@functools.lru_cache(maxsize=4096)
def written_topic(statement: str) -> str | None:
    """The topic whose table ``statement`` writes, if it writes a watched one; ``SCHEMA`` if it
    creates, drops or alters something."""
    match = _WRITE.match(statement)
    if match:
        return WATCHED.get(match.group(1).lower())
    return SCHEMA if _SCHEMA_CHANGE.match(statement) else None


class _Watch:
    """The listeners of one engine. A catalog migrated to before 0010 (only tests do that) has no
    version table, and its writes bump nothing: whether the table is there is asked again after
    anything changed the schema, and remembered otherwise."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.present = False

    def noted(self, conn: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        topic = written_topic(statement)
        if topic == SCHEMA:
            self.present = False
        elif topic is not None:
            conn.info.setdefault(_PENDING, set()).add(topic)

    def committing(self, conn: sa.Connection) -> None:
        topics = conn.info.pop(_PENDING, None)
        if not topics:
            return
        # The DBAPI cursor, not ``conn.execute``: this runs inside SQLAlchemy's commit, and must
        # neither fire these listeners again nor leave the transaction.
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if not self.present:
                cursor.execute(_EXISTS[self.dialect])
                row = cursor.fetchone()
                self.present = bool(row and row[0])
                if not self.present:
                    return
            for topic in sorted(topics):  # constant names from WATCHED, never user input
                cursor.execute(f"UPDATE dg_catalog_version SET version = version + 1 WHERE topic = '{topic}'")
        finally:
            cursor.close()
        pin = _PIN.get()
        if pin is not None:
            pin.forget()  # the request wrote: what it reads next must see its own write

    def forget(self, conn: sa.Connection, *_args: Any) -> None:
        conn.info.pop(_PENDING, None)

    def forget_record(self, _dbapi_connection: Any, record: Any, *_args: Any) -> None:
        record.info.pop(_PENDING, None)


def watch_writes(engine: sa.Engine) -> None:
    """Bump ``dg_catalog_version`` in every transaction that writes a watched table of ``engine``."""
    watch = _Watch(engine.dialect.name)
    sa.event.listen(engine, "after_cursor_execute", watch.noted)
    sa.event.listen(engine, "commit", watch.committing)
    sa.event.listen(engine, "rollback", watch.forget)
    sa.event.listen(engine.pool, "checkin", watch.forget_record)


# --- a request's view of the version ------------------------------------------------------------


class RequestPin:
    """The catalog version one request reads by: taken at its first cached read, dropped when the
    request itself commits a watched write (so that it reads its own writes).

    ``cache_data``: datasets, streams, executions and permission levels may be served from memory
    too, not only who the caller is. Requests that change things read those fresh, so that a
    decision to write never rests on a copy."""

    __slots__ = ("_read", "_versions", "cache_data")

    def __init__(self, read: Callable[[], Versions], *, cache_data: bool) -> None:
        self._read = read
        self._versions: Versions | None = None
        self.cache_data = cache_data

    def versions(self) -> Versions:
        if self._versions is None:
            self._versions = self._read()
        return self._versions

    def forget(self) -> None:
        self._versions = None


# A mutable holder in a context variable: threads the request hands work to get a copy of the
# context, and so the same holder, and what one of them reads or forgets the others see.
_PIN: contextvars.ContextVar[RequestPin | None] = contextvars.ContextVar("dg_catalog_pin", default=None)


def pin_request(read: Callable[[], Versions], *, cache_data: bool) -> None:
    """Start reading by the catalog version for the rest of the current request (its context)."""
    _PIN.set(RequestPin(read, cache_data=cache_data))


def current_pin() -> RequestPin | None:
    """The current request's pin; None outside a request (background jobs, the CLI): no caching."""
    return _PIN.get()
