"""Running a connector's Source directly, without a server, and a private MariaDB database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pytest

from datagrove.connectors.base import RunContext, Source
from datagrove.connectors.network import NetworkPolicy
from datagrove.domain import UpdateMethod
from datagrove.tables.types import Column

MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def context(
    config: Mapping[str, str],
    *,
    credentials: Mapping[str, str] | None = None,
    columns: Sequence[Column] = (),
    state: Mapping[str, str] | None = None,
    network: NetworkPolicy | None = None,
    batch_rows: int = 1000,
    max_download_bytes: int = 10 * 1024**3,
) -> RunContext:
    return RunContext(
        config=dict(config),
        credentials=dict(credentials or {}),
        account_type=None,
        columns=list(columns),
        state=dict(state or {}),
        update_method=UpdateMethod.REPLACE,
        network=network or NetworkPolicy(allowed=("127.0.0.1",)),
        cancelled=lambda: False,
        batch_rows=batch_rows,
        max_download_bytes=max_download_bytes,
    )


def read_all(source: Source) -> pa.Table:
    """Every batch of ``source`` as one table (each batch checked against the announced schema)."""
    try:
        batches = list(source.batches())
        for batch in batches:
            assert batch.schema.equals(source.schema), (batch.schema, source.schema)
        return pa.Table.from_batches(batches, schema=source.schema)
    finally:
        source.close()


@contextmanager
def private_mysql_database() -> Iterator[str]:
    """A new MariaDB/MySQL database for one test run, dropped afterwards."""
    import pymysql

    name = "dg_test_" + uuid.uuid4().hex[:12]
    try:
        conn = pymysql.connect(**MYSQL, autocommit=True)  # type: ignore[arg-type]
    except pymysql.err.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"MariaDB is not reachable: {exc}")
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def mysql_execute(database: str, *statements: str, args: Any = None) -> None:
    import pymysql

    conn = pymysql.connect(**MYSQL, database=database, autocommit=True)  # type: ignore[arg-type]
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement, args)
    finally:
        conn.close()
