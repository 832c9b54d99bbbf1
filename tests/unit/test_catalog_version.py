"""The catalog version (catalog/versions.py) on SQLite and PostgreSQL: every committed write to a
watched table bumps its topic once, in the same transaction; nothing else does. And the read cache
built on it (catalog/read_cache.py) answers from memory only while the version stands."""

from __future__ import annotations

import contextvars
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.catalog.database import make_engine, migrate
from datagrove.catalog.repository import Catalog, utcnow
from datagrove.catalog.versions import VersionReader, Versions, pin_request, read_versions, written_topic
from datagrove.domain import Role
from tests.support.postgres import private_schema


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'catalog.db'}"
        return
    with private_schema() as made:
        yield made


@pytest.fixture(scope="module")
def engine(url: str) -> Iterator[sa.Engine]:
    made = make_engine(url)
    migrate(made)
    yield made
    made.dispose()


def bumped(engine: sa.Engine, before: Versions) -> dict[str, int]:
    after = read_versions(engine)
    return {
        topic: getattr(after, topic) - getattr(before, topic)
        for topic in ("access", "datasets", "executions")
        if getattr(after, topic) != getattr(before, topic)
    }


def test_a_committed_write_bumps_its_topic_once_however_many_statements(engine: sa.Engine):
    before = read_versions(engine)
    with engine.begin() as db:
        for n in range(3):
            db.execute(
                t.users.insert().values(
                    name="u",
                    email=f"{n}-{id(before)}@example.com",
                    role="Admin",
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
    assert bumped(engine, before) == {"access": 1}


def test_text_sql_writes_are_seen_too(engine: sa.Engine):
    before = read_versions(engine)
    with engine.begin() as db:
        db.execute(sa.text("UPDATE dg_datasets SET name = name WHERE id = 'none'"))
        db.execute(sa.text("DELETE FROM dg_executions WHERE id = -1"))
    assert bumped(engine, before) == {"datasets": 1, "executions": 1}


def test_a_rolled_back_write_bumps_nothing(engine: sa.Engine):
    before = read_versions(engine)
    with engine.connect() as db:
        db.execute(sa.text("UPDATE dg_users SET name = name"))
        db.rollback()
    with engine.connect() as db:  # closed without a commit: rolled back too
        db.execute(sa.text("UPDATE dg_users SET name = name"))
    assert bumped(engine, before) == {}


def test_writes_to_other_tables_and_reads_bump_nothing(engine: sa.Engine):
    before = read_versions(engine)
    with engine.begin() as db:
        db.execute(sa.text("SELECT * FROM dg_users"))
        db.execute(t.server_keys.delete().where(t.server_keys.c.name == "none"))
    assert bumped(engine, before) == {}


def test_the_bump_is_seen_only_when_the_write_is(engine: sa.Engine):
    before = read_versions(engine)
    with engine.connect() as db:
        db.execute(sa.text("UPDATE dg_streams SET update_method = update_method"))
        assert bumped(engine, before) == {}  # not committed: another connection sees no change
        db.commit()
    assert bumped(engine, before) == {"datasets": 1}


def test_written_topic_reads_every_form_of_write():
    assert written_topic('INSERT INTO "dg_access_tokens" (x) VALUES (1)') == "access"
    assert written_topic("insert or replace into dg_group_members values (1)") == "access"
    assert written_topic("\n  UPDATE dg_parts SET x = 1") == "executions"
    assert written_topic("DELETE FROM dg_dataset_permissions WHERE 1") == "access"
    assert written_topic("UPDATE dg_audit SET x = 1") is None
    assert written_topic("SELECT * FROM dg_users") is None


def test_cached_reads_last_exactly_one_version(url: str, engine: sa.Engine):
    """A read in a pinned request is kept; a write by another engine (another process, as far as
    this one knows) makes the next request read again, and a request's own write its next read."""
    # In a context of its own, as a request runs: the pins end with it, not leak into other tests.
    contextvars.copy_context().run(cached_reads_last_exactly_one_version, url, engine)


def cached_reads_last_exactly_one_version(url: str, engine: sa.Engine) -> None:
    catalog = Catalog(engine)
    user = catalog.create_user(name="before", email=f"cache-{id(catalog)}@example.com", role=Role.ADMIN)
    other = make_engine(url)
    try:
        pin_request(catalog.versions, cache_data=True)
        assert catalog.get_user(user.id).name == "before"
        with engine.connect() as db:  # behind the cache's back, and bumping nothing
            db.execute(sa.text("SELECT 1"))
        assert catalog.get_user(user.id) is catalog.get_user(user.id)  # from memory

        def elsewhere() -> None:
            with other.begin() as db:
                db.execute(t.users.update().where(t.users.c.id == user.id).values(name="after"))

        contextvars.Context().run(elsewhere)  # not this request's write
        assert catalog.get_user(user.id).name == "before"  # this request keeps its version
        pin_request(catalog.versions, cache_data=True)  # the next request
        assert catalog.get_user(user.id).name == "after"

        with engine.begin() as db:  # this request writes: its next read sees the write
            db.execute(t.users.update().where(t.users.c.id == user.id).values(name="own"))
        assert catalog.get_user(user.id).name == "own"
    finally:
        other.dispose()


def test_the_per_request_reader_agrees_and_survives_a_dead_connection(engine: sa.Engine):
    reader = VersionReader(engine)
    assert reader.read() == read_versions(engine)
    for connection in [getattr(reader._local, "connection", None), *reader._idle]:
        if connection is not None:
            connection.close()  # as a database restart would leave it
    with engine.begin() as db:
        db.execute(sa.text("UPDATE dg_users SET name = name"))
    assert reader.read() == read_versions(engine)


def test_readers_sharing_reads_each_see_every_write_committed_before_they_asked(engine: sa.Engine):
    """On PostgreSQL concurrent readers share one read; none may take the answer of a read that
    started before it asked, which could miss a write (a revoke) committed in between."""
    reader = VersionReader(engine)
    committed = [read_versions(engine).datasets]  # after each write's commit, its version
    missed: list[tuple[int, int]] = []
    reads = 0
    done = threading.Event()

    def write() -> None:
        try:
            for _ in range(40):
                with engine.begin() as db:
                    db.execute(sa.text("UPDATE dg_streams SET update_method = update_method"))
                committed.append(read_versions(engine).datasets)
        finally:
            done.set()

    def read() -> None:
        nonlocal reads
        while not done.is_set():
            floor = committed[-1]
            seen = reader.read().datasets
            reads += 1
            if seen < floor:
                missed.append((floor, seen))

    threads = [threading.Thread(target=write), *(threading.Thread(target=read) for _ in range(8))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert missed == []
    assert reads > 40
    assert reader.read().datasets == committed[-1]
