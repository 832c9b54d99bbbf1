"""The mysql connector against the real MariaDB service, in a database of its own."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterator

import pymysql
import pytest

from datagrove.connectors.base import SourceError, TransientSourceError
from datagrove.connectors.mysql import MysqlConnector
from datagrove.connectors.network import NetworkPolicy
from datagrove.errors import BadRequest
from tests.support.connectors import MYSQL, context, mysql_execute, private_mysql_database, read_all

PASSWORD = "pw-" + uuid.uuid4().hex
ROWS = 3000


def label(g: int) -> str | None:
    return None if g % 5 == 0 else "" if g % 5 == 1 else f'ünï {g} "q",\n😀'


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with private_mysql_database() as name:
        mysql_execute(
            name,
            """CREATE TABLE t (
                id INT PRIMARY KEY, big BIGINT, ratio DOUBLE, price DECIMAL(12, 3), label VARCHAR(100),
                flag TINYINT(1), day DATE, at DATETIME(6), at_ts TIMESTAMP(6) NULL, doc JSON,
                bin VARBINARY(8), tm TIME, third DECIMAL(30, 20)
            ) CHARACTER SET utf8mb4""",
            "SET time_zone = '+00:00'",
        )
        conn = pymysql.connect(
            **MYSQL, database=name, autocommit=True, init_command="SET time_zone = '+00:00'"
        )  # type: ignore[arg-type]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        g,
                        g * 1000000007,
                        g / 7.0,
                        decimal.Decimal(g) * decimal.Decimal("1.125"),
                        label(g),
                        g % 2,
                        dt.date(2024, 1, 1) + dt.timedelta(days=g),
                        dt.datetime(2024, 1, 1) + dt.timedelta(seconds=g, microseconds=g),
                        dt.datetime(2024, 6, 1, 10) + dt.timedelta(minutes=g),
                        f'{{"g": {g}}}',
                        bytes([0, 255, g % 256]),
                        dt.timedelta(hours=12, seconds=g),
                        decimal.Decimal(1) / decimal.Decimal(3),
                    )
                    for g in range(1, ROWS + 1)
                ],
            )
        conn.close()
        yield name


def config(database: str, query: str, **extra: str) -> dict[str, str]:
    return {
        "query": query,
        "host": "127.0.0.1",
        "port": "3306",
        "database": database,
        "username": "root",
        **extra,
    }


def test_columns_get_domo_types_and_values_arrive_exactly(database: str) -> None:
    source = MysqlConnector().open(context(config(database, "SELECT * FROM t ORDER BY id")))
    table = read_all(source)
    assert table.num_rows == ROWS
    assert dict(zip(table.schema.names, map(str, table.schema.types), strict=True)) == {
        "id": "int64",
        "big": "int64",
        "ratio": "double",
        "price": "decimal128(38, 10)",
        "label": "string",
        "flag": "int64",
        "day": "date32[day]",
        "at": "timestamp[us]",
        "at_ts": "timestamp[us]",
        "doc": "string",
        "bin": "string",
        "tm": "string",
        "third": "decimal128(38, 10)",
    }
    row = table.slice(2, 1).to_pylist()[0]
    assert row == {
        "id": 3,
        "big": 3000000021,
        "ratio": 3 / 7.0,
        "price": decimal.Decimal("3.375"),
        "label": 'ünï 3 "q",\n😀',
        "flag": 1,
        "day": dt.date(2024, 1, 4),
        "at": dt.datetime(2024, 1, 1, 0, 0, 3, 3),
        "at_ts": dt.datetime(2024, 6, 1, 10, 3),
        "doc": row["doc"],
        "bin": "\\x00ff03",
        "tm": "12:00:03",
        "third": decimal.Decimal("0.3333333333"),
    }
    assert row["doc"].replace(" ", "") == '{"g":3}'


def test_null_and_the_empty_string_stay_apart(database: str) -> None:
    source = MysqlConnector().open(context(config(database, "SELECT id, label FROM t WHERE id <= 10")))
    labels = {row["id"]: row["label"] for row in read_all(source).to_pylist()}
    assert labels[5] is None and labels[10] is None
    assert labels[1] == "" and labels[6] == ""


def test_batches_hold_batch_rows_rows(database: str) -> None:
    source = MysqlConnector().open(context(config(database, "SELECT id FROM t"), batch_rows=1000))
    try:
        assert [batch.num_rows for batch in source.batches()] == [1000, 1000, 1000]
    finally:
        source.close()


def test_the_cursor_column_reads_only_new_rows(database: str) -> None:
    mysql_execute(database, "CREATE TABLE inc AS SELECT id, label FROM t")
    cfg = config(database, "SELECT id, label FROM inc", cursorColumn="id")
    source = MysqlConnector().open(context(cfg))
    first = read_all(source)
    assert first.num_rows == ROWS and source.state() == {"cursor": str(ROWS)}
    assert first["id"].to_pylist() == sorted(first["id"].to_pylist())

    mysql_execute(database, f"INSERT INTO inc VALUES ({ROWS + 2}, 'b'), ({ROWS + 1}, 'a'), (0, 'old')")
    source = MysqlConnector().open(context(cfg, state=source.state()))
    assert read_all(source).to_pylist() == [{"id": ROWS + 1, "label": "a"}, {"id": ROWS + 2, "label": "b"}]
    assert source.state() == {"cursor": str(ROWS + 2)}

    source = MysqlConnector().open(context(cfg, state=source.state()))
    assert read_all(source).num_rows == 0
    assert source.state() == {"cursor": str(ROWS + 2)}


def test_a_datetime_cursor_compares_as_a_datetime_and_a_quote_stays_in_the_literal(database: str) -> None:
    cfg = config(database, "SELECT id, at FROM t WHERE id <= 10", cursorColumn="at")
    source = MysqlConnector().open(context(cfg, state={"cursor": "2024-01-01 00:00:08.000008"}))
    assert read_all(source)["id"].to_pylist() == [9, 10]
    assert source.state() == {"cursor": "2024-01-01 00:00:10.000010"}
    cfg = config(database, "SELECT id, label FROM t WHERE id <= 10", cursorColumn="label")
    source = MysqlConnector().open(context(cfg, state={"cursor": "x' OR '1'='1"}))
    assert read_all(source).num_rows == 0  # compared as text, never run as SQL


def test_bad_sql_is_a_source_error_with_the_servers_message(database: str) -> None:
    with pytest.raises(SourceError) as raised:
        MysqlConnector().open(context(config(database, "SELECT nope FROM t")))
    assert type(raised.value) is SourceError
    assert "Unknown column 'nope'" in raised.value.message


def test_a_refused_login_is_a_source_error_without_the_password(database: str) -> None:
    cfg = config(database, "SELECT 1", username="nobody_" + uuid.uuid4().hex[:6], password=PASSWORD)
    with pytest.raises(SourceError) as raised:
        MysqlConnector().open(context(cfg))
    assert type(raised.value) is SourceError
    assert "Access denied" in raised.value.message
    assert PASSWORD not in raised.value.message


def test_a_refused_connection_is_transient(database: str) -> None:
    with pytest.raises(TransientSourceError) as raised:
        MysqlConnector().open(context(config(database, "SELECT 1", port="1", password=PASSWORD)))
    assert "127.0.0.1:1" in raised.value.message and PASSWORD not in raised.value.message


def test_a_private_host_is_refused_unless_allowed(database: str) -> None:
    with pytest.raises(BadRequest, match="connector_allowed_hosts"):
        MysqlConnector().check(config(database, "SELECT 1"), network=NetworkPolicy())
    with pytest.raises(BadRequest, match="connector_allowed_hosts"):
        MysqlConnector().open(context(config(database, "SELECT 1"), network=NetworkPolicy()))


def test_a_percent_sign_in_the_query_is_left_alone(database: str) -> None:
    cfg = config(database, "SELECT count(*) AS n FROM t WHERE label LIKE '%q%'", cursorColumn="n")
    source = MysqlConnector().open(context(cfg, state={"cursor": "0"}))
    assert read_all(source).to_pylist() == [{"n": ROWS * 3 // 5}]


def test_closing_early_does_not_read_the_rest(database: str) -> None:
    cfg = config(database, "SELECT a.id FROM t a, t b")  # 9 million rows
    source = MysqlConnector().open(context(cfg, batch_rows=100))
    assert next(iter(source.batches())).num_rows == 100
    source.close()


def test_a_connection_killed_while_rows_stream_is_transient(database: str) -> None:
    marker = "marker-" + uuid.uuid4().hex
    cfg = config(database, f"SELECT a.id, '{marker}' AS m FROM t a, t b")
    source = MysqlConnector().open(context(cfg, batch_rows=1000))
    try:
        batches = source.batches()
        next(batches)
        conn = pymysql.connect(**MYSQL, autocommit=True)  # type: ignore[arg-type]
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id FROM information_schema.processlist WHERE info LIKE %s AND id <> CONNECTION_ID()",
                (f"%{marker}%",),
            )
            (thread,) = cur.fetchone()
            cur.execute(f"KILL {int(thread)}")
        conn.close()
        with pytest.raises(TransientSourceError):
            for _ in batches:
                pass
    finally:
        source.close()
