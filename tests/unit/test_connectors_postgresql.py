"""The postgresql connector against the real PostgreSQL service, in a schema of its own."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import uuid
from collections.abc import Iterator

import psycopg
import pyarrow as pa
import pytest

from datagrove.connectors.base import SourceError, TransientSourceError
from datagrove.connectors.network import NetworkPolicy
from datagrove.connectors.postgresql import PostgresqlConnector
from datagrove.errors import BadRequest
from tests.support.connectors import context, read_all

DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PASSWORD = "pw-" + uuid.uuid4().hex
ROWS = 3000


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    name = "dg_conn_" + uuid.uuid4().hex[:12]
    try:
        conn = psycopg.connect(DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    with conn:
        conn.execute(f"CREATE SCHEMA {name}")
        conn.execute(
            f"""CREATE TABLE {name}.t AS SELECT
                g AS id,
                g::int8 * 1000000007 AS big,
                g::int2 % 100 AS small,
                g / 7.0::float8 AS ratio,
                (g * 1.125)::numeric(12, 3) AS price,
                CASE WHEN g % 5 = 0 THEN NULL WHEN g % 5 = 1 THEN '' ELSE 'ünï ' || g || E' "q",\n' END AS label,
                g % 2 = 0 AS even,
                DATE '2024-01-01' + g AS day,
                TIMESTAMP '2024-01-01 00:00:00' + g * INTERVAL '1 second 1 microsecond' AS at,
                TIMESTAMPTZ '2024-06-01 12:00:00+02' + g * INTERVAL '1 minute' AS at_tz,
                jsonb_build_object('g', g) AS doc,
                md5(g::text)::uuid AS uid,
                1::numeric / 3 AS third
            FROM generate_series(1, {ROWS}) g"""
        )
        yield name
        conn.execute(f"DROP SCHEMA {name} CASCADE")


def config(query: str, **extra: str) -> dict[str, str]:
    return {
        "query": query,
        "host": "127.0.0.1",
        "port": "5432",
        "database": "test",
        "username": "postgres",
        "password": PASSWORD,
        **extra,
    }


def read(query: str, **kwargs: object) -> tuple[pa.Table, dict[str, str]]:
    source = PostgresqlConnector().open(context(config(query), **kwargs))  # type: ignore[arg-type]
    table = read_all(source)
    return table, dict(source.state())


def test_columns_get_domo_types_and_values_arrive_exactly(schema: str) -> None:
    table, _ = read(f"SELECT * FROM {schema}.t ORDER BY id;")
    assert table.num_rows == ROWS
    assert dict(zip(table.schema.names, map(str, table.schema.types), strict=True)) == {
        "id": "int64",
        "big": "int64",
        "small": "int64",
        "ratio": "double",
        "price": "decimal128(38, 10)",
        "label": "string",
        "even": "bool",
        "day": "date32[day]",
        "at": "timestamp[us]",
        "at_tz": "timestamp[us]",
        "doc": "string",
        "uid": "string",
        "third": "decimal128(38, 10)",
    }
    rows = table.to_pylist()
    assert rows[0]["ratio"] == 1 / 7.0
    assert rows[2] == {
        "id": 3,
        "big": 3000000021,
        "small": 3,
        "ratio": 3 / 7.0,
        "price": decimal.Decimal("3.375"),
        "label": 'ünï 3 "q",\n',
        "even": False,
        "day": dt.date(2024, 1, 4),
        "at": dt.datetime(2024, 1, 1, 0, 0, 3, 3),
        "at_tz": dt.datetime(2024, 6, 1, 10, 3),  # UTC
        "doc": '{"g": 3}',
        "uid": str(uuid.UUID(rows[2]["uid"])),
        "third": decimal.Decimal("0.3333333333"),  # rounded to DECIMAL's 10 places
    }


def test_null_and_the_empty_string_stay_apart(schema: str) -> None:
    table, _ = read(f"SELECT id, label FROM {schema}.t WHERE id <= 10")
    labels = dict(zip(table["id"].to_pylist(), table["label"].to_pylist(), strict=True))
    assert labels[5] is None and labels[10] is None
    assert labels[1] == "" and labels[6] == ""


def test_an_empty_result_has_a_schema_and_no_batches(schema: str) -> None:
    table, _ = read(f"SELECT id, label FROM {schema}.t WHERE false")
    assert table.num_rows == 0
    assert table.schema.names == ["id", "label"]


def test_the_cursor_column_reads_only_new_rows(schema: str) -> None:
    query = f"SELECT id, label FROM {schema}.inc"
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {schema}.inc AS SELECT id, label FROM {schema}.t")
        source = PostgresqlConnector().open(context(config(query, cursorColumn="id")))
        first = read_all(source)
        state = dict(source.state())
        assert first.num_rows == ROWS and state == {"cursor": str(ROWS)}
        assert first["id"].to_pylist() == sorted(first["id"].to_pylist())

        conn.execute(f"INSERT INTO {schema}.inc VALUES ({ROWS + 2}, 'b'), ({ROWS + 1}, 'a'), (0, 'old')")
        source = PostgresqlConnector().open(context(config(query, cursorColumn="id"), state=state))
        second = read_all(source)
        assert second.to_pylist() == [{"id": ROWS + 1, "label": "a"}, {"id": ROWS + 2, "label": "b"}]
        assert source.state() == {"cursor": str(ROWS + 2)}

        source = PostgresqlConnector().open(context(config(query, cursorColumn="id"), state=source.state()))
        assert read_all(source).num_rows == 0
        assert source.state() == {"cursor": str(ROWS + 2)}  # kept when no rows came


def test_a_timestamp_cursor_compares_as_a_timestamp(schema: str) -> None:
    query = f"SELECT id, at_tz FROM {schema}.t WHERE id <= 10"
    source = PostgresqlConnector().open(
        context(config(query, cursorColumn="at_tz"), state={"cursor": "2024-06-01 10:08:00"})
    )
    assert read_all(source)["id"].to_pylist() == [9, 10]
    assert source.state() == {"cursor": "2024-06-01 10:10:00"}


def test_a_cursor_column_the_query_lacks_is_named(schema: str) -> None:
    with pytest.raises(SourceError, match="'nope'"):
        PostgresqlConnector().open(context(config(f"SELECT id FROM {schema}.t", cursorColumn="nope")))


def test_bad_sql_is_a_source_error_with_the_servers_message(schema: str) -> None:
    with pytest.raises(SourceError) as raised:
        PostgresqlConnector().open(context(config(f"SELECT nope FROM {schema}.t")))
    assert type(raised.value) is SourceError
    assert 'column "nope" does not exist' in raised.value.message
    assert PASSWORD not in raised.value.message


def test_an_error_while_rows_stream_is_a_source_error(schema: str) -> None:
    with pytest.raises(SourceError, match="division by zero") as raised:
        source = PostgresqlConnector().open(
            context(config("SELECT 1 / (g - 150000) AS x FROM generate_series(1, 200000) g"))
        )
        read_all(source)
    assert PASSWORD not in raised.value.message


def test_an_unknown_database_is_a_source_error_without_the_password() -> None:
    cfg = config("SELECT 1") | {"database": "no_such_db_" + uuid.uuid4().hex[:6]}
    with pytest.raises(SourceError) as raised:
        PostgresqlConnector().open(context(cfg))
    assert type(raised.value) is SourceError
    assert "does not exist" in raised.value.message
    assert PASSWORD not in raised.value.message


def test_a_refused_connection_is_transient() -> None:
    cfg = config("SELECT 1") | {"port": "1"}
    with pytest.raises(TransientSourceError) as raised:
        PostgresqlConnector().open(context(cfg))
    assert "127.0.0.1:1" in raised.value.message and PASSWORD not in raised.value.message


def test_a_private_host_is_refused_unless_allowed() -> None:
    with pytest.raises(BadRequest, match="connector_allowed_hosts"):
        PostgresqlConnector().check(config("SELECT 1"), network=NetworkPolicy())
    with pytest.raises(BadRequest, match="connector_allowed_hosts"):
        PostgresqlConnector().open(context(config("SELECT 1"), network=NetworkPolicy()))
    PostgresqlConnector().check(config("SELECT 1"), network=NetworkPolicy(allowed=("127.0.0.1",)))


def test_the_check_needs_a_query() -> None:
    with pytest.raises(BadRequest, match="'query'"):
        PostgresqlConnector().check({"host": "127.0.0.1"}, network=NetworkPolicy(allowed=("127.0.0.1",)))


def test_the_accounts_connection_items_win(schema: str) -> None:
    cfg = {"query": f"SELECT count(*) AS n FROM {schema}.t", "host": "192.0.2.1", "port": "9"}
    credentials = {"host": "127.0.0.1", "port": "5432", "database": "test", "username": "postgres"}
    source = PostgresqlConnector().open(context(cfg, credentials=credentials))
    assert read_all(source).to_pylist() == [{"n": ROWS}]


def test_closing_early_ends_the_copy(schema: str) -> None:
    source = PostgresqlConnector().open(
        context(config("SELECT g FROM generate_series(1, 3000000) g"), batch_rows=1000)
    )
    batches = source.batches()
    assert next(batches).num_rows > 0
    source.close()


def test_a_connection_lost_while_rows_stream_is_transient(schema: str) -> None:
    marker = "marker-" + uuid.uuid4().hex
    query = f"SELECT g, '{marker}' AS m FROM generate_series(1, 5000000) g"
    source = PostgresqlConnector().open(context(config(query), batch_rows=1000))
    try:
        batches = source.batches()
        next(batches)
        with psycopg.connect(DSN, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
                (f"%{marker}%",),
            ).fetchall()
        assert killed == [(True,)]
        with pytest.raises(TransientSourceError) as raised:
            for _ in batches:
                pass
        assert PASSWORD not in raised.value.message
    finally:
        source.close()
