"""Reusing the query sandbox: a locked DuckDB that answered a query cleanly serves the next query
that would see exactly the same, and nothing a query does is visible to the next one.

Which database a query ran in shows in ``current_query_id()``: DuckDB counts the queries a
database has run, so a new database always gives the same id and a reused one a higher one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datagrove.errors import InvalidSql, QueryLimitExceeded
from datagrove.tables.batch_stream import batch_error, stream_batches
from datagrove.tables.json_rows import RowForm
from datagrove.tables.json_stream import stream_query
from datagrove.tables.sandbox import QueryLimits, locked_connection, open_sandbox, run_query
from datagrove.tables.sandbox_pool import IDLE, keep_idle
from datagrove.tables.sql_translate import VIEW_NAME

LIMITS = QueryLimits(timeout_seconds=10, max_rows=1000)
ROWS = pa.table({"id": [1, 2, 3, 4], "owner": ["ann", "bob", "ann", "bob"]})
QUERY_ID = "SELECT current_query_id() AS id"


@dataclass(frozen=True)
class Dataset:
    files: list[str]
    view_sql: str

    def filtered(self, predicate: str) -> Dataset:
        return Dataset(self.files, f"{self.view_sql} WHERE ({predicate})")


@pytest.fixture(autouse=True)
def pool() -> Iterator[None]:
    """An empty pool of the default size for each test, and for the tests after."""
    keep_idle(0)
    keep_idle(4)
    yield
    keep_idle(0)
    keep_idle(4)


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    paths = [tmp_path / "part-0.parquet", tmp_path / "part-1.parquet"]
    pq.write_table(ROWS.slice(0, 2), paths[0])
    pq.write_table(ROWS.slice(2), paths[1])
    files = [str(p) for p in paths]
    listed = ", ".join(f"'{f}'" for f in files)
    return Dataset(files, f"SELECT * FROM read_parquet([{listed}])")


def query(dataset: Dataset, sql: str, limits: QueryLimits = LIMITS) -> list[tuple]:
    return [
        tuple(r.values())
        for r in run_query(sql, view_sql=dataset.view_sql, files=dataset.files, limits=limits).to_pylist()
    ]


def query_id(dataset: Dataset, limits: QueryLimits = LIMITS) -> int:
    return query(dataset, QUERY_ID, limits)[0][0]


def new_database_id(dataset: Dataset) -> int:
    """The id ``QUERY_ID`` gives in a database no query has used."""
    with locked_connection(view_sql=dataset.view_sql, files=dataset.files, limits=LIMITS) as con:
        return con.sql(f"SELECT * FROM (\n{QUERY_ID}\n) LIMIT {LIMITS.max_rows + 1}").fetchall()[0][0]


# --- reuse --------------------------------------------------------------------------------------


def test_a_clean_query_hands_its_database_to_the_next_query_of_the_same_identity(dataset):
    fresh = new_database_id(dataset)
    assert query_id(dataset) == fresh
    assert query_id(dataset) > fresh
    assert len(IDLE) == 1


def test_a_reused_database_gives_the_same_answers(dataset):
    sql = "SELECT owner, count(*), sum(id) FROM dataset GROUP BY owner ORDER BY owner"
    first = query(dataset, sql)
    assert query(dataset, sql) == first == [("ann", 2, 4), ("bob", 2, 6)]


def test_with_a_pool_of_zero_every_query_gets_a_new_database(dataset):
    keep_idle(0)
    fresh = new_database_id(dataset)
    assert [query_id(dataset) for _ in range(3)] == [fresh] * 3
    assert len(IDLE) == 0


def test_the_pool_keeps_at_most_its_size_dropping_the_least_recently_used(dataset):
    keep_idle(2)
    views = [dataset.filtered(f"id >= {n}") for n in range(3)]
    for view in views:
        query_id(view)
    assert len(IDLE) == 2
    fresh = new_database_id(views[0])
    assert query_id(views[0]) == fresh  # the oldest went
    assert query_id(views[2]) > fresh


def test_a_database_is_never_shared_by_two_queries_at_once(dataset):
    first = open_sandbox(views={VIEW_NAME: dataset.view_sql}, files=dataset.files, limits=LIMITS)
    first.release(clean=True)
    taken = open_sandbox(views={VIEW_NAME: dataset.view_sql}, files=dataset.files, limits=LIMITS)
    other = open_sandbox(views={VIEW_NAME: dataset.view_sql}, files=dataset.files, limits=LIMITS)
    try:
        assert taken.reused and not other.reused
        assert taken.con is not other.con
    finally:
        taken.release(clean=False)
        other.release(clean=False)


# --- identity: what a database can see ----------------------------------------------------------


def test_users_under_different_row_policies_never_share_a_database(dataset):
    ann, bob = dataset.filtered("owner = 'ann'"), dataset.filtered("owner = 'bob'")
    sql = "SELECT id, owner FROM dataset ORDER BY id"
    for _ in range(3):
        assert query(ann, sql) == [(1, "ann"), (3, "ann")]
        assert query(bob, sql) == [(2, "bob"), (4, "bob")]
        assert query(dataset, sql) == [(1, "ann"), (2, "bob"), (3, "ann"), (4, "bob")]
    assert len(IDLE) == 3
    assert query_id(ann) > new_database_id(ann)  # each was reused by its own kind


def test_other_files_or_other_limits_get_another_database(dataset):
    query_id(dataset)
    fewer = Dataset(dataset.files[:1], f"SELECT * FROM read_parquet('{dataset.files[0]}')")
    assert query_id(fewer) == new_database_id(fewer)
    assert query_id(dataset, QueryLimits(timeout_seconds=10, max_rows=1000, threads=1)) == new_database_id(
        dataset
    )
    assert query_id(dataset, QueryLimits(timeout_seconds=10, max_rows=1000, memory_limit="1GB")) == (
        new_database_id(dataset)
    )


def test_the_time_and_row_limits_are_not_part_of_the_identity(dataset):
    fresh = new_database_id(dataset)
    query_id(dataset)
    assert query_id(dataset, QueryLimits(timeout_seconds=5, max_rows=3)) > fresh


def test_a_database_whose_files_are_gone_is_not_kept(dataset):
    sandbox = open_sandbox(views={VIEW_NAME: dataset.view_sql}, files=dataset.files, limits=LIMITS)
    Path(dataset.files[1]).unlink()
    sandbox.release(clean=True)
    assert len(IDLE) == 0


def test_a_file_replaced_at_the_same_path_is_read_anew_by_a_reused_database(dataset):
    # As a file cache's copy that was evicted and fetched again (same bytes in practice; here not).
    query(dataset, "SELECT sum(id) FROM dataset")
    pq.write_table(pa.table({"id": [30, 40], "owner": ["ann", "bob"]}), dataset.files[1])
    assert query(dataset, "SELECT sum(id) FROM dataset") == [(73,)]


# --- what ends a database's service ---------------------------------------------------------------


def assert_not_reused(dataset: Dataset) -> None:
    assert query_id(dataset) == new_database_id(dataset)


def test_a_query_error_discards_the_database(dataset):
    with pytest.raises(InvalidSql):
        query(dataset, "SELECT error('boom') FROM dataset")
    assert len(IDLE) == 0
    assert_not_reused(dataset)


def test_a_timeout_discards_the_database(dataset):
    with pytest.raises(QueryLimitExceeded, match="longer than"):
        query(
            dataset,
            "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b",
            QueryLimits(timeout_seconds=0.2, max_rows=10),
        )
    assert len(IDLE) == 0


def test_a_memory_failure_discards_the_database(dataset):
    limits = QueryLimits(timeout_seconds=30, max_rows=10, memory_limit="20MB")
    with pytest.raises(QueryLimitExceeded, match="memory"):
        query(dataset, "SELECT count(DISTINCT range) FROM range(20000000)", limits)
    assert len(IDLE) == 0


def test_a_streamed_answer_read_to_the_end_hands_its_database_on(dataset):
    fresh = new_database_id(dataset)
    rows = stream_query(
        QUERY_ID, view_sql=dataset.view_sql, files=dataset.files, limits=LIMITS, form=RowForm.ARRAYS
    )
    assert b"".join(rows)
    assert len(IDLE) == 1
    assert query_id(dataset) > fresh


def test_a_streamed_answer_closed_early_discards_its_database(dataset):
    rows = stream_query(
        "SELECT * FROM range(100000)",
        view_sql=dataset.view_sql,
        files=dataset.files,
        limits=QueryLimits(timeout_seconds=10, max_rows=1_000_000),
        form=RowForm.ARRAYS,
    )
    next(iter(rows))
    rows.close()
    assert len(IDLE) == 0


def test_a_streamed_answer_past_the_row_limit_discards_its_database(dataset):
    rows = stream_query(
        "SELECT * FROM range(5000)",
        view_sql=dataset.view_sql,
        files=dataset.files,
        limits=LIMITS,
        form=RowForm.ARRAYS,
    )
    with pytest.raises(QueryLimitExceeded):
        b"".join(rows)
    assert len(IDLE) == 0


def test_arrow_batches_read_to_the_end_hand_their_database_on_and_a_closed_reader_does_not(dataset):
    views = {"people": dataset.view_sql}
    reader = stream_batches("SELECT * FROM people", views=views, files=dataset.files, limits=LIMITS)
    assert reader.read_all().num_rows == 4
    assert len(IDLE) == 1
    reader = stream_batches(
        "SELECT * FROM range(1000000)", views=views, files=dataset.files, limits=LIMITS, batch_rows=10
    )
    reader.read_next_batch()
    reader.close()
    assert len(IDLE) == 0  # the one kept was taken by this reader, which did not end cleanly


def test_arrow_batches_that_fail_discard_their_database(dataset):
    views = {"people": dataset.view_sql}
    failing = "SELECT CASE WHEN range < 500000 THEN range ELSE error('boom') END FROM range(1000000)"
    reader = stream_batches(failing, views=views, files=dataset.files, limits=LIMITS, batch_rows=10)
    with pytest.raises(Exception) as raised:
        reader.read_all()
    assert isinstance(batch_error(raised.value), InvalidSql)
    assert len(IDLE) == 0


# --- nothing a query leaves behind is seen by the next ------------------------------------------


def test_a_seed_set_by_a_query_does_not_reach_the_next_query(dataset):
    control = duckdb.connect(":memory:")
    control.execute("SELECT setseed(0.25)").fetchall()
    seeded = control.sql("SELECT random()").fetchall()[0][0]
    control.close()
    query(dataset, "SELECT setseed(0.25)")
    assert len(IDLE) == 0  # the database that took the seed is gone
    assert query(dataset, "SELECT random()")[0][0] != seeded
    assert len(IDLE) == 1


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT setseed(0.25)",
        'SELECT "SETSEED"(0.25)',
        "SELECT * FROM query('SELECT setseed(0.25)')",
        "SELECT * FROM query('SELECT set' || 'seed(0.25)')",
        "SELECT * FROM query_table('dataset')",
        "SELECT write_log('left behind')",
        "SELECT * FROM truncate_duckdb_logs()",
        "SELECT * FROM checkpoint()",
        "SELECT * FROM duckdb_external_resources()",
    ],
)
def test_a_query_naming_a_function_that_can_leave_state_never_hands_its_database_on(dataset, sql):
    query(dataset, sql)
    assert len(IDLE) == 0


STATEMENTS_THAT_WOULD_LEAVE_STATE = {
    "a variable": "SET VARIABLE secret = 42",
    "a variable through query()": "SELECT * FROM query('SET VARIABLE secret = 42')",
    "a temporary table through query()": "SELECT * FROM query('CREATE TEMP TABLE t AS SELECT 42')",
    "a sequence through query()": "SELECT * FROM query('CREATE SEQUENCE s')",
    "a macro through query()": "SELECT * FROM query('CREATE MACRO m() AS 42')",
    "a prepared statement through query()": "SELECT * FROM query('PREPARE p AS SELECT 42')",
    "an attached database through query()": "SELECT * FROM query('ATTACH '':memory:'' AS m')",
    "a setting": "SELECT * FROM enable_profiling()",
    "logging": "SELECT * FROM enable_logging()",
}


@pytest.mark.parametrize(
    "sql", STATEMENTS_THAT_WOULD_LEAVE_STATE.values(), ids=STATEMENTS_THAT_WOULD_LEAVE_STATE.keys()
)
def test_a_statement_that_would_leave_state_is_refused_and_its_database_discarded(dataset, sql):
    query_id(dataset)  # a database in the pool, taken by the next query
    with pytest.raises(InvalidSql):
        query(dataset, sql)
    assert len(IDLE) == 0
    assert query(dataset, "SELECT getvariable('secret')") == [(None,)]


def test_an_idle_database_whose_files_went_is_closed_at_the_next_miss(dataset, tmp_path):
    query_id(dataset)
    assert len(IDLE) == 1
    Path(dataset.files[1]).unlink()
    other = tmp_path / "other.parquet"
    pq.write_table(ROWS, other)
    query_id(Dataset([str(other)], f"SELECT * FROM read_parquet('{other}')"))
    assert len(IDLE) == 1  # only the new one
