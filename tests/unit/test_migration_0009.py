"""Migration 0009 (one connector run in progress per stream) on SQLite and PostgreSQL: a stream that
already holds several queued runs keeps the oldest, and from then on the database refuses a second."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from datagrove.catalog.database import make_engine, migrate
from tests.support.postgres import private_schema

NOW = "CURRENT_TIMESTAMP"


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """A catalog at 0007 whose stream 1 holds three queued connector runs and a pushed execution,
    and whose stream 2 holds one running connector run."""
    if request.param == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            made = make_engine(f"sqlite:///{Path(directory) / 'catalog.db'}")
            yield _at_0007(made)
            made.dispose()
        return
    with private_schema() as url:
        made = make_engine(url)
        yield _at_0007(made)
        made.dispose()


def _at_0007(engine: sa.Engine) -> sa.Engine:
    migrate(engine, "0007")
    with engine.begin() as db:
        db.execute(
            sa.text(
                "INSERT INTO dg_users (name, email, role, created_at, updated_at) "
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
        for _ in range(2):
            db.execute(
                sa.text(
                    "INSERT INTO dg_streams (dataset_id, update_method, created_at, modified_at) "
                    f"VALUES ('d1', 'APPEND', {NOW}, {NOW})"
                )
            )
        for stream, connector_run, state in [
            (1, True, "ACTIVE"),
            (1, True, "ACTIVE"),
            (1, False, "ACTIVE"),
            (1, True, "ACTIVE"),
            (1, True, "SUCCESS"),
            (2, True, "COMMITTING"),
        ]:
            insert_run(db, stream, connector_run=connector_run, state=state)
    return engine


def insert_run(db: sa.Connection, stream: int, *, connector_run: bool = True, state: str = "ACTIVE") -> None:
    db.execute(
        sa.text(
            "INSERT INTO dg_executions (stream_id, state, update_method, created_at, modified_at, connector_run) "
            f"VALUES (:stream, :state, 'APPEND', {NOW}, {NOW}, :connector_run)"
        ),
        {"stream": stream, "state": state, "connector_run": connector_run},
    )


def states(engine: sa.Engine) -> list[tuple[int, str]]:
    with engine.connect() as db:
        return [tuple(row) for row in db.execute(sa.text("SELECT id, state FROM dg_executions ORDER BY id"))]


def test_a_stream_with_several_runs_in_progress_keeps_the_oldest_and_the_rest_are_aborted(engine: sa.Engine):
    migrate(engine)
    assert states(engine) == [
        (1, "ACTIVE"),
        (2, "ABORTED"),
        (3, "ACTIVE"),  # a pushed execution: not a connector run, untouched
        (4, "ABORTED"),
        (5, "SUCCESS"),
        (6, "COMMITTING"),
    ]
    with engine.connect() as db:
        error = db.execute(sa.text("SELECT error FROM dg_executions WHERE id = 2")).scalar()
    assert "another run of the stream was already in progress" in error


def test_after_it_the_database_refuses_a_second_run_in_progress_and_allows_one_after_the_first_ends(
    engine: sa.Engine,
):
    migrate(engine)
    for stream in (1, 2):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as db:
            insert_run(db, stream)
    with engine.begin() as db:
        insert_run(db, 1, connector_run=False)  # pushed executions are not limited by it
        insert_run(db, 1, state="ERROR")
        db.execute(sa.text("UPDATE dg_executions SET state = 'SUCCESS' WHERE id = 6"))
        insert_run(db, 2)
