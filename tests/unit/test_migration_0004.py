"""Migration 0004 (deleted datasets) on a catalog that already holds streams, executions and parts,
on SQLite and PostgreSQL: nothing is lost, and deleting a dataset no longer deletes its streams."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from datagrove.catalog.database import MIGRATIONS_DIR, make_engine, migrate
from tests.support.postgres import private_schema

NOW = "CURRENT_TIMESTAMP"


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """A catalog migrated to 0003 holding dataset ``d1`` with streams 1 and 2 (stream 3 was made and
    deleted), an ACTIVE execution of stream 1 and a part of it."""
    if request.param == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            made = make_engine(f"sqlite:///{Path(directory) / 'catalog.db'}")
            yield _at_0003(made)
            made.dispose()
        return
    with private_schema() as url:
        made = make_engine(url)
        yield _at_0003(made)
        made.dispose()


def _at_0003(engine: sa.Engine) -> sa.Engine:
    migrate(engine, "0003")
    with engine.begin() as db:
        db.execute(
            sa.text(
                f"INSERT INTO dg_users (name, email, role, created_at, updated_at) "
                f"VALUES ('Ada', 'ada@example.com', 'Admin', {NOW}, {NOW})"
            )
        )
        owner = db.execute(sa.text("SELECT MAX(id) FROM dg_users")).scalar()
        db.execute(
            sa.text(
                "INSERT INTO dg_datasets (id, name, description, owner_id, schema_json, row_count, "
                f"pdp_enabled, created_at, updated_at) VALUES ('d1', 'n', 'd', :owner, '[]', 0, false, {NOW}, {NOW})"
            ),
            {"owner": owner},
        )
        for _ in range(3):
            db.execute(
                sa.text(
                    "INSERT INTO dg_streams (dataset_id, update_method, created_at, modified_at) "
                    f"VALUES ('d1', 'APPEND', {NOW}, {NOW})"
                )
            )
        db.execute(sa.text("DELETE FROM dg_streams WHERE id = 3"))
        db.execute(
            sa.text(
                "INSERT INTO dg_executions (stream_id, state, update_method, created_at, modified_at) "
                f"VALUES (1, 'ACTIVE', 'APPEND', {NOW}, {NOW})"
            )
        )
        db.execute(
            sa.text(
                "INSERT INTO dg_parts (execution_id, part, state, rows, bytes, uploaded_at) "
                f"VALUES (1, 0, 'READY', 1, 1, {NOW})"
            )
        )
    return engine


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as db:
        return int(db.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar() or 0)


def test_migrating_keeps_every_stream_execution_and_part(engine: sa.Engine):
    migrate(engine)
    assert (count(engine, "dg_streams"), count(engine, "dg_executions"), count(engine, "dg_parts")) == (
        2,
        1,
        1,
    )
    with engine.connect() as db:
        row = db.execute(sa.text("SELECT * FROM dg_streams WHERE id = 1")).mappings().one()
    assert row["dataset_id"] == "d1" and row["dataset_deleted_at"] is None and row["dataset_name"] is None


def test_after_migrating_a_deleted_datasets_streams_and_executions_stay(engine: sa.Engine):
    migrate(engine)
    with engine.begin() as db:
        db.execute(sa.text("DELETE FROM dg_datasets WHERE id = 'd1'"))
    assert (count(engine, "dg_streams"), count(engine, "dg_executions"), count(engine, "dg_parts")) == (
        2,
        1,
        1,
    )


def test_a_deleted_streams_id_is_not_given_again_after_migrating(engine: sa.Engine):
    migrate(engine)
    with engine.begin() as db:
        new_id = db.execute(
            sa.text(
                "INSERT INTO dg_streams (dataset_id, update_method, created_at, modified_at) "
                f"VALUES ('d1', 'APPEND', {NOW}, {NOW}) RETURNING id"
            )
        ).scalar()
    assert new_id == 4


def test_migrating_leaves_foreign_keys_enforced_on_sqlite(engine: sa.Engine):
    migrate(engine)
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite pragma")
    with engine.connect() as db:
        assert db.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_downgrading_drops_the_tombstones_and_cascades_again(engine: sa.Engine):
    migrate(engine)
    with engine.begin() as db:
        db.execute(
            sa.text(
                "INSERT INTO dg_streams (dataset_id, update_method, created_at, modified_at, dataset_deleted_at) "
                f"VALUES ('gone', 'APPEND', {NOW}, {NOW}, {NOW})"
            )
        )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":  # as migrate() does: no cascades while tables are rebuilt
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
    assert count(engine, "dg_streams") == 2  # the tombstone went, the live streams stayed
    with engine.begin() as db:
        db.execute(sa.text("DELETE FROM dg_datasets WHERE id = 'd1'"))
    assert (count(engine, "dg_streams"), count(engine, "dg_executions"), count(engine, "dg_parts")) == (
        0,
        0,
        0,
    )
