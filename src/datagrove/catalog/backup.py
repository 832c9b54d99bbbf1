"""The catalog's side of ``datagrove backup`` and ``datagrove restore``.

A backup copies the catalog database while servers keep writing to it, as one consistent state:

- SQLite through its online backup API (``sqlite3.Connection.backup``): one read transaction over
  the whole file, which in WAL mode never blocks a writer;
- PostgreSQL through ``pg_dump`` (custom format) run on a snapshot that this process exports from
  its own REPEATABLE READ transaction (``pg_export_snapshot``), so the dump and the list of Iceberg
  tables read here (``CatalogCopy.tables``) are the very same state.

Restore loads that copy into the target catalog and moves every location it records (pyiceberg's
``iceberg_tables`` and the files waiting in ``dg_expired_files``) to the target storage.

The backup lease: table maintenance deletes the files of expired snapshots and orphans, and must
not delete one that a running backup has still to copy. A backup holds a row in
``dg_server_keys`` (no table of its own: no migration) named ``backup-lease:<id>`` whose value is
the time it runs out; the backup renews it while it runs, so a backup process that dies stops
holding back deletions a lease period later. Maintenance deletes nothing while a lease is live
(``backup_running``).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.errors import BackupRefused

LEASE_PREFIX = "backup-lease:"
ICEBERG_CATALOG = "datagrove"  # pyiceberg's catalog name (tables/store.py)
SQLITE_FILE = "catalog.db"
POSTGRES_FILE = "catalog.pgdump"


@dataclass(frozen=True)
class IcebergTable:
    """One row of pyiceberg's ``iceberg_tables`` as the copy holds it."""

    namespace: str
    name: str
    metadata_location: str


@dataclass(frozen=True)
class CatalogCopy:
    """A consistent copy of the catalog in ``file`` and the Iceberg tables it names."""

    kind: str  # "sqlite" or "postgresql"
    file: Path
    schema: str | None  # PostgreSQL: the schema the catalog lives in
    tables: tuple[IcebergTable, ...]


def kind_of(url: str) -> str:
    backend = sa.engine.make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupRefused(f"backup supports SQLite and PostgreSQL catalogs, not {backend}")
    return backend


# --- copy -----------------------------------------------------------------------------------------


def copy_catalog(url: str, directory: Path) -> CatalogCopy:
    """Copy the catalog at ``url`` into ``directory`` as one consistent state, online."""
    if kind_of(url) == "sqlite":
        return _copy_sqlite(_sqlite_path(url), directory / SQLITE_FILE)
    return _dump_postgres(url, directory / POSTGRES_FILE)


def _sqlite_path(url: str) -> Path:
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:":
        raise BackupRefused("an in-memory SQLite catalog cannot be backed up")
    return Path(database)


def _copy_sqlite(source: Path, target: Path) -> CatalogCopy:
    if not source.exists():
        raise BackupRefused(f"there is no catalog at {source}")
    # Read-only: a backup never changes the catalog it copies (the lease is written elsewhere).
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # all pages in one step: one read transaction, one state
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        tables = _iceberg_tables(dst.execute(_TABLES_SQL, {"catalog": ICEBERG_CATALOG}).fetchall())
    finally:
        dst.close()
        src.close()
    return CatalogCopy("sqlite", target, None, tables)


_TABLES_SQL = (
    "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables "
    "WHERE catalog_name = :catalog ORDER BY table_namespace, table_name"
)


def _iceberg_tables(rows: Sequence[Sequence[Any]]) -> tuple[IcebergTable, ...]:
    return tuple(IcebergTable(str(row[0]), str(row[1]), str(row[2])) for row in rows if row[2])


def _dump_postgres(url: str, target: Path) -> CatalogCopy:
    pg_dump = _tool("pg_dump")
    engine = sa.create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as db:
            # The snapshot stays valid while this transaction is open: pg_dump reads exactly it.
            db.execute(sa.text("SET TRANSACTION READ ONLY"))
            snapshot = db.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            schema = db.execute(sa.text("SELECT current_schema()")).scalar_one()
            tables = _iceberg_tables(list(db.execute(sa.text(_TABLES_SQL), {"catalog": ICEBERG_CATALOG})))
            address, env = _libpq(url)
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--schema={schema}",
                    f"--file={target}",
                    f"--dbname={address}",
                ],
                env,
                "pg_dump",
            )
            db.rollback()
    finally:
        engine.dispose()
    return CatalogCopy("postgresql", target, str(schema), tables)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupRefused(
            f"{name} is not installed (on Debian: apt-get install postgresql-client, of the server's "
            "major version or newer); a PostgreSQL catalog is backed up and restored with it"
        )
    return found


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The libpq address of a SQLAlchemy URL, and the environment carrying its password (never
    an argument: other users of the machine can read the process list)."""
    parsed = sa.engine.make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    address = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return address, env


def _run(command: list[str], env: dict[str, str], what: str) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # pg_dump's message names the problem; it holds no password (that is in the environment).
        raise BackupRefused(f"{what} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


# --- restore --------------------------------------------------------------------------------------


def is_empty(url: str) -> bool:
    """Whether the target catalog holds no tables at all (a fresh file or schema)."""
    if kind_of(url) == "sqlite":
        path = _sqlite_path(url)
        if not path.exists():
            return True
    engine = sa.create_engine(url)
    try:
        with engine.connect() as db:
            return not sa.inspect(db).get_table_names()
    finally:
        engine.dispose()


def check_target(copy_kind: str, url: str, *, schema: str | None) -> None:
    """Refuse (before a restore writes anything) a target catalog the copy cannot be loaded into."""
    kind = kind_of(url)
    if kind != copy_kind:
        raise BackupRefused(f"the backup holds a {copy_kind} catalog; the target catalog is {kind}")
    if kind == "postgresql":
        engine = sa.create_engine(url)
        try:
            with engine.connect() as db:
                target_schema = _first_schema(str(db.execute(sa.text("SHOW search_path")).scalar_one()))
        finally:
            engine.dispose()
        if target_schema != schema:
            raise BackupRefused(
                f"the backup's catalog lives in schema {schema!r}, the target catalog URL points at "
                f"{target_schema!r}: restore into a database whose search_path names {schema!r}"
            )
        _tool("pg_restore")


def load_catalog(copy_kind: str, file: Path, url: str, *, schema: str | None) -> None:
    """Replace the catalog at ``url`` by the copy in ``file`` (the caller checked the target with
    ``check_target`` and that it is empty, or was told to overwrite it). No server may be using the
    target catalog meanwhile."""
    check_target(copy_kind, url, schema=schema)
    if copy_kind == "sqlite":
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".{target.name}.restoring")
        shutil.copyfile(file, staged)
        # A log left by the catalog being replaced would be replayed into the restored one.
        for leftover in (Path(f"{target}-wal"), Path(f"{target}-shm"), Path(f"{target}-journal")):
            leftover.unlink(missing_ok=True)
        os.replace(staged, target)
        return
    assert schema is not None
    _restore_postgres(file, url, schema)


def _restore_postgres(file: Path, url: str, schema: str) -> None:
    pg_restore = _tool("pg_restore")
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as db:
            # Emptied (with --force) and made here, not by the dump: the schema may already exist.
            quoted = db.dialect.identifier_preparer.quote(schema)
            db.execute(sa.text(f"DROP SCHEMA IF EXISTS {quoted} CASCADE"))
            db.execute(sa.text(f"CREATE SCHEMA {quoted}"))
    finally:
        engine.dispose()
    address, env = _libpq(url)
    listing = _run([pg_restore, "--list", str(file)], env, "pg_restore --list")
    entries = file.with_name(file.name + ".list")
    entries.write_text("\n".join(line for line in listing.splitlines() if " SCHEMA - " not in line) + "\n")
    try:
        _run(
            [
                pg_restore,
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                f"--use-list={entries}",
                f"--dbname={address}",
                str(file),
            ],
            env,
            "pg_restore",
        )
    finally:
        entries.unlink(missing_ok=True)


def _first_schema(search_path: str) -> str:
    names = [name.strip().strip('"') for name in search_path.split(",")]
    return next((name for name in names if name and name != "$user"), "public")


def relocate(url: str, move: Callable[[str], str]) -> None:
    """After a restore: point every location the catalog records at the new storage (``move``
    maps an old URI to its new one), drop the leases the copy held, and end the executions that
    were receiving parts, whose staged parts are not in a backup (a client uploads them again)."""
    engine = sa.create_engine(url)
    tables = sa.table(
        "iceberg_tables",
        sa.column("catalog_name"),
        sa.column("table_namespace"),
        sa.column("table_name"),
        sa.column("metadata_location"),
        sa.column("previous_metadata_location"),
    )
    try:
        with engine.begin() as db:
            for row in db.execute(sa.select(tables).where(tables.c.catalog_name == ICEBERG_CATALOG)).all():
                db.execute(
                    tables.update()
                    .where(
                        tables.c.catalog_name == row.catalog_name,
                        tables.c.table_namespace == row.table_namespace,
                        tables.c.table_name == row.table_name,
                    )
                    .values(
                        metadata_location=move(row.metadata_location) if row.metadata_location else None,
                        previous_metadata_location=(
                            move(row.previous_metadata_location) if row.previous_metadata_location else None
                        ),
                    )
                )
            for file_id, uri in db.execute(sa.select(t.expired_files.c.id, t.expired_files.c.uri)).all():
                db.execute(
                    t.expired_files.update().where(t.expired_files.c.id == file_id).values(uri=move(uri))
                )
            db.execute(t.server_keys.delete().where(t.server_keys.c.name.startswith(LEASE_PREFIX)))
            db.execute(
                t.executions.update()
                .where(t.executions.c.state == "ACTIVE", t.executions.c.connector_run == sa.false())
                .values(
                    state="ABORTED",
                    ended_at=datetime.now(UTC),
                    error="the server was restored from a backup, which holds no uploaded parts",
                )
            )
    finally:
        engine.dispose()


# --- the lease ------------------------------------------------------------------------------------


class BackupLease:
    """This backup's lease (see the module docstring): ``take``, ``renew`` while copying,
    ``release`` at the end."""

    def __init__(self, url: str, *, seconds: float) -> None:
        if kind_of(url) == "sqlite" and not _sqlite_path(url).exists():
            # Checked first: opening it would create an empty catalog where none was.
            raise BackupRefused(f"there is no catalog at {_sqlite_path(url)}")
        self._engine = sa.create_engine(url)
        self._name = LEASE_PREFIX + uuid.uuid4().hex
        self.seconds = seconds

    def take(self) -> None:
        try:
            with self._engine.begin() as db:
                db.execute(t.server_keys.insert().values(name=self._name, value=self._until()))
        except sa.exc.SQLAlchemyError as exc:
            self._engine.dispose()
            reason = str(exc.orig) if isinstance(exc, sa.exc.DBAPIError) else type(exc).__name__
            raise BackupRefused(
                f"the catalog cannot be written to (is it a Datagrove catalog?): {reason}"
            ) from exc

    def renew(self) -> None:
        with self._engine.begin() as db:
            db.execute(
                t.server_keys.update().where(t.server_keys.c.name == self._name).values(value=self._until())
            )

    def release(self) -> None:
        try:
            with self._engine.begin() as db:
                db.execute(t.server_keys.delete().where(t.server_keys.c.name == self._name))
        finally:
            self._engine.dispose()

    def _until(self) -> str:
        return (datetime.now(UTC) + timedelta(seconds=self.seconds)).isoformat()


def backup_running(engine: sa.Engine, *, now: datetime | None = None) -> bool:
    """Whether a backup holds a live lease; leases that ran out (their backup died) are removed."""
    now = now or datetime.now(UTC)
    live = False
    with engine.begin() as db:
        rows = db.execute(
            sa.select(t.server_keys.c.name, t.server_keys.c.value).where(
                t.server_keys.c.name.startswith(LEASE_PREFIX)
            )
        ).all()
        for name, value in rows:
            try:
                until = datetime.fromisoformat(value)
            except ValueError:
                until = now  # unreadable: treated as run out
            if until > now:
                live = True
            else:
                db.execute(t.server_keys.delete().where(t.server_keys.c.name == name))
    return live
