"""Through the HTTP query endpoint, SQL reads its own dataset and nothing else, within limits.

Every way out of the sandbox (files, settings, extensions, the catalog, writes, a second
statement, another dataset) is refused with 400 and a JSON error, and the server goes on
answering. Queries that return too many rows or run too long are stopped with
``query_limit_exceeded`` naming the limit.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "LONG", "name": "n"}]}


def create_dataset(client, name: str, rows: int) -> str:
    dataset_id = client.post("/v1/datasets", json={"name": name, "schema": SCHEMA}).json()["id"]
    body = "".join(f"{n}\n" for n in range(rows)).encode()
    assert client.put(f"/v1/datasets/{dataset_id}/data", content=body).status_code == 204
    return dataset_id


def query(client, dataset_id: str, sql: str):
    return client.post(f"/v1/datasets/query/execute/{dataset_id}", json={"sql": sql})


def still_answers(client, dataset_id: str, rows: int) -> None:
    answer = query(client, dataset_id, "SELECT COUNT(*) FROM table")
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == [[rows]]


@pytest.fixture
def client(server: RunningServer):
    with server.client() as client:
        yield client


@pytest.fixture
def dataset(client) -> str:
    return create_dataset(client, "sandbox", rows=3)


ESCAPES = {
    "read_csv of a file": "SELECT * FROM read_csv('/etc/passwd')",
    "a file path as table": "SELECT * FROM '/etc/passwd'",
    "read_text": "SELECT read_text('/etc/passwd')",
    "read_blob": "SELECT read_blob('/etc/passwd')",
    "read_parquet": "SELECT * FROM read_parquet('/etc/passwd')",
    "MySQL load_file": "SELECT load_file('/etc/passwd')",
    "a reader inside WITH": "WITH t AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM t",
    "a reader inside LATERAL": "SELECT * FROM table, LATERAL (SELECT * FROM read_text('/etc/passwd')) x",
    "a reader inside UNION": "SELECT CAST(n AS VARCHAR) FROM table UNION ALL SELECT content FROM read_text('/etc/passwd')",
    "glob": "SELECT * FROM glob('/*')",
    "INSTALL": "INSTALL httpfs",
    "LOAD": "LOAD httpfs",
    "PRAGMA": "PRAGMA version",
    "CALL": "CALL pragma_version()",
    "SET": "SET enable_external_access=true",
    "CREATE TABLE": "CREATE TABLE t AS SELECT 1",
    "DROP TABLE": "DROP TABLE table",
    "a second statement": "SELECT * FROM table; SELECT 1",
    "a statement smuggled past the wrapping": "SELECT 1) ; CREATE TABLE t AS (SELECT 1",
    "information_schema": "SELECT * FROM information_schema.tables",
    "a catalog-qualified table": "SELECT * FROM system.main.table",
    "duckdb_settings": "SELECT * FROM duckdb_settings()",
    "duckdb_tables": "SELECT * FROM duckdb_tables()",
    "current_setting": "SELECT current_setting('allowed_paths')",
    "getenv": "SELECT getenv('HOME')",
    "query()": "SELECT * FROM query('SELECT 1')",
    "the internal view name": 'SELECT * FROM "dataset"',
}


@pytest.mark.parametrize("sql", ESCAPES.values(), ids=ESCAPES.keys())
def test_each_way_out_of_the_sandbox_is_refused_with_400_and_the_server_goes_on(client, dataset, sql):
    response = query(client, dataset, sql)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert error["code"] == "invalid_sql" and error["message"]
    assert "root:" not in response.text  # nothing of /etc/passwd
    still_answers(client, dataset, rows=3)


def test_copy_to_a_file_is_refused_and_writes_nothing(client, dataset, tmp_path: Path):
    target = tmp_path / "x.csv"

    response = query(client, dataset, f"COPY (SELECT 1) TO '{target}'")

    assert response.status_code == 400 and response.json()["code"] == "invalid_sql"
    assert not target.exists()
    still_answers(client, dataset, rows=3)


def test_attach_of_a_database_file_is_refused_and_creates_nothing(client, dataset, tmp_path: Path):
    target = tmp_path / "x.db"

    response = query(client, dataset, f"ATTACH '{target}' AS x")

    assert response.status_code == 400 and response.json()["code"] == "invalid_sql"
    assert not target.exists()
    still_answers(client, dataset, rows=3)


def test_a_query_cannot_read_another_dataset_by_its_id(client, dataset):
    other = create_dataset(client, "other", rows=5)

    for sql in (f"SELECT * FROM `{other}`", f"SELECT * FROM table JOIN `{other}` o ON table.n = o.n"):
        response = query(client, dataset, sql)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_sql"
    still_answers(client, dataset, rows=3)
    still_answers(client, other, rows=5)


def test_a_query_may_name_its_own_dataset_by_its_id(client, dataset):
    answer = query(client, dataset, f"SELECT COUNT(*) FROM `{dataset}`")

    assert answer.status_code == 200 and answer.json()["rows"] == [[3]]


# --- limits -------------------------------------------------------------------------------------

MAX_ROWS = 10
TIMEOUT_SECONDS = 1


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory):
    """A server of its own whose queries may return 10 rows and run for 1 s."""
    running = RunningServer(
        data_dir=tmp_path_factory.mktemp("limited-server"),
        catalog_url=None,
        extra_env={
            "DATAGROVE_QUERY_MAX_ROWS": str(MAX_ROWS),
            "DATAGROVE_QUERY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        },
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def limited(limited_server: RunningServer):
    """A client of the limited server and a dataset of 3,000 rows on it."""
    with limited_server.client() as client:
        yield client, create_dataset(client, "limited", rows=3_000)


def test_a_result_of_exactly_the_row_limit_is_answered(limited):
    client, dataset = limited

    answer = query(client, dataset, f"SELECT * FROM table ORDER BY n LIMIT {MAX_ROWS}")

    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == [[n] for n in range(MAX_ROWS)]


def test_a_result_over_the_row_limit_is_refused_naming_the_limit(limited):
    client, dataset = limited

    response = query(client, dataset, f"SELECT * FROM table LIMIT {MAX_ROWS + 1}")

    assert response.status_code == 400, response.text
    error = response.json()
    assert error["code"] == "query_limit_exceeded"
    assert f"{MAX_ROWS} rows" in error["message"]
    still_answers(client, dataset, rows=3_000)


SLOW_QUERIES = {
    # 3,000³ = 27 billion rows.
    "a triple cross join": "SELECT SUM(a.n * b.n * c.n) FROM table a CROSS JOIN table b CROSS JOIN table c",
    "a long recursive CTE": (
        "WITH RECURSIVE r (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 100000000000) "
        "SELECT COUNT(*) FROM r"
    ),
}


@pytest.mark.parametrize("sql", SLOW_QUERIES.values(), ids=SLOW_QUERIES.keys())
def test_a_query_running_over_the_time_limit_is_stopped_naming_the_limit(limited, sql):
    client, dataset = limited

    started = time.monotonic()
    response = query(client, dataset, sql)
    elapsed = time.monotonic() - started

    assert response.status_code == 400, response.text
    error = response.json()
    assert error["code"] == "query_limit_exceeded"
    assert f"{TIMEOUT_SECONDS} s" in error["message"]
    assert elapsed < TIMEOUT_SECONDS + 4
    still_answers(client, dataset, rows=3_000)
