"""Engine creation and schema migration for the catalog database."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from datagrove.catalog.versions import watch_writes
from datagrove.metrics import PoolUse

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(
    url: str, *, synced_commits: bool = False, pool_size: int = 20, max_overflow: int = 20
) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so readers never block writers.

    SQLite's commits in WAL mode survive the process dying, not the machine: the log is synced at
    checkpoints. ``synced_commits`` syncs it at every commit too, for writes that are acknowledged
    as durable (one-row appends); PostgreSQL syncs every commit anyway.

    The pool keeps ``pool_size`` connections open (on SQLite too: SQLAlchemy's default of 5 closed
    and reopened connections under concurrency, ~9 % of a small request). Every write to a watched
    table bumps the catalog version (``catalog/versions.py``)."""
    engine = _engine(url, synced_commits=synced_commits, pool_size=pool_size, max_overflow=max_overflow)
    watch_writes(engine)
    return engine


def _engine(url: str, *, synced_commits: bool, pool_size: int, max_overflow: int) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            poolclass=sa.QueuePool,
            pool_size=pool_size,
            max_overflow=max_overflow,
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL" if synced_commits else "PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow)


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the catalog schema to ``revision``, the newest migration by default (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch migrations recreate a SQLite table by copying it and dropping the original; with
            # foreign keys enforced, that drop would cascade-delete every row referencing the table.
            # The pragma is ignored inside a transaction, so it is set before the migrations' one.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise RuntimeError("a catalog migration left rows whose foreign keys point nowhere")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def pool_use(engine: sa.Engine) -> PoolUse | None:
    """How the engine's connection pool is used now (for ``/metrics``); None for a pool that does
    not keep connections (no size to report)."""
    pool = engine.pool
    if not isinstance(pool, sa.pool.QueuePool):
        return None
    return PoolUse(
        size=pool.size(), checked_out=pool.checkedout(), idle=pool.checkedin(), overflow=pool.overflow()
    )
