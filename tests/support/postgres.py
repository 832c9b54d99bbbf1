"""A private PostgreSQL schema for one test run, so runs never collide."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

SERVER_URL = os.environ.get("DATAGROVE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def private_schema() -> Iterator[str]:
    """Yields a catalog URL whose search_path is a new schema; drops the schema afterwards.

    Without CI set, a missing PostgreSQL skips the test; in CI it fails it.
    """
    engine = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    schema = "dg_test_" + uuid.uuid4().hex[:12]
    try:
        with engine.connect() as db:
            db.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    try:
        yield f"{SERVER_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.connect() as db:
            db.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
