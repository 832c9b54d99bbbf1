"""The query sandbox: a locked DuckDB that reads one dataset's Parquet files and nothing else.

Each escape attempt is refused three times over: by ``translate`` (the friendly layer), by
``run_query``, ``stream_query`` and ``stream_batches`` given the raw DuckDB SQL (as if translation were bypassed), and by the locked
connection itself when the statement is run on it directly (as if run_query's wrapping were).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datagrove.errors import DatagroveError, InvalidSql, QueryLimitExceeded
from datagrove.tables.batch_stream import batch_error, stream_batches
from datagrove.tables.json_rows import RowForm
from datagrove.tables.json_stream import JsonRows, stream_query
from datagrove.tables.sandbox import QueryLimits, locked_connection, run_query
from datagrove.tables.sql_translate import translate

ROWS = pa.table({"id": [1, 2, 3, 4], "name": ["ann", "bob", "cy", "dee"], "amount": [10.5, 20.0, 5.25, 7.0]})
LIMITS = QueryLimits(timeout_seconds=10, max_rows=1000)
# 10^10 rows: minutes of work on any machine, so only the timeout can end it.
SLOW_QUERY = "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b"


@dataclass(frozen=True)
class Dataset:
    files: list[str]
    view_sql: str
    sibling: Path  # a Parquet file in the dataset's own directory that is not one of its files
    other_parquet: Path  # another dataset's file
    other_csv: Path
    scratch: Path  # where escapes would write if they could


def view_over(files: list[str]) -> str:
    quoted = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return f"SELECT * FROM read_parquet([{quoted}])"


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    own = tmp_path / "datasets" / "mine"
    other = tmp_path / "datasets" / "theirs"
    scratch = tmp_path / "scratch"
    for directory in (own, other, scratch):
        directory.mkdir(parents=True)
    pq.write_table(ROWS.slice(0, 2), own / "part-0.parquet")
    pq.write_table(ROWS.slice(2), own / "part-1.parquet")
    pq.write_table(pa.table({"secret": ["sibling"]}), own / "stale-part.parquet")
    pq.write_table(pa.table({"secret": ["theirs"]}), other / "part-0.parquet")
    (other / "export.csv").write_text("secret\ntheirs\n")
    files = [str(own / "part-0.parquet"), str(own / "part-1.parquet")]
    return Dataset(
        files=files,
        view_sql=view_over(files),
        sibling=own / "stale-part.parquet",
        other_parquet=other / "part-0.parquet",
        other_csv=other / "export.csv",
        scratch=scratch,
    )


def query(dataset: Dataset, sql: str, limits: QueryLimits = LIMITS) -> pa.Table:
    return run_query(sql, view_sql=dataset.view_sql, files=dataset.files, limits=limits)


def stream(dataset: Dataset, sql: str) -> JsonRows:
    return stream_query(
        sql, view_sql=dataset.view_sql, files=dataset.files, limits=LIMITS, form=RowForm.ARRAYS
    )


# --- answers ------------------------------------------------------------------------------------


def test_a_query_reads_every_file_of_the_dataset(dataset):
    assert query(dataset, 'SELECT * FROM "dataset" ORDER BY id').equals(ROWS)


def test_the_users_order_by_is_kept(dataset):
    result = query(dataset, 'SELECT name FROM "dataset" ORDER BY amount DESC')
    assert result.column("name").to_pylist() == ["bob", "ann", "dee", "cy"]


def test_a_query_led_by_a_cte_runs(dataset):
    sql = 'WITH big AS (SELECT * FROM "dataset" WHERE amount > 6) SELECT count(*) AS n FROM big'
    assert query(dataset, sql).to_pylist() == [{"n": 3}]


def test_a_trailing_semicolon_and_a_trailing_comment_are_harmless(dataset):
    assert query(dataset, 'SELECT count(*) AS n FROM "dataset"; ').to_pylist() == [{"n": 4}]
    assert query(dataset, 'SELECT count(*) AS n FROM "dataset" -- how many?').to_pylist() == [{"n": 4}]


def test_translated_sql_runs_in_the_sandbox(dataset):
    sql = translate("SELECT `name` FROM table t WHERE t.amount > 6 ORDER BY 1 LIMIT 1, 2", dataset_names=[])
    assert query(dataset, sql).column("name").to_pylist() == ["bob", "dee"]


# --- limits -------------------------------------------------------------------------------------


def test_a_result_of_exactly_max_rows_is_returned(dataset):
    assert (
        query(dataset, 'SELECT * FROM "dataset"', QueryLimits(timeout_seconds=10, max_rows=4)).num_rows == 4
    )


def test_a_result_longer_than_max_rows_is_refused(dataset):
    with pytest.raises(QueryLimitExceeded, match="more than 3 rows; add a LIMIT or aggregate"):
        query(dataset, 'SELECT * FROM "dataset"', QueryLimits(timeout_seconds=10, max_rows=3))


def test_a_slow_query_is_stopped_at_the_timeout(dataset):
    started = time.monotonic()
    with pytest.raises(QueryLimitExceeded, match="ran longer than 0.5 s"):
        query(dataset, SLOW_QUERY, QueryLimits(timeout_seconds=0.5, max_rows=10))
    assert time.monotonic() - started < 3


def test_a_timeout_that_expires_before_execution_starts_still_stops_the_query(dataset):
    started = time.monotonic()
    with pytest.raises(QueryLimitExceeded, match="ran longer than"):
        query(dataset, SLOW_QUERY, QueryLimits(timeout_seconds=0.0001, max_rows=10))
    assert time.monotonic() - started < 3


def test_a_query_that_needs_more_memory_than_the_limit_is_refused_not_spilled(dataset):
    limits = QueryLimits(timeout_seconds=30, max_rows=10, memory_limit="20MB")
    with pytest.raises(QueryLimitExceeded, match="more than 20MB of memory"):
        query(dataset, "SELECT count(DISTINCT range) FROM range(20000000)", limits)
    assert list(dataset.scratch.iterdir()) == []


def test_no_watchdog_thread_outlives_its_query(dataset):
    query(dataset, "SELECT 1")
    with pytest.raises(QueryLimitExceeded):
        query(dataset, SLOW_QUERY, QueryLimits(timeout_seconds=0.2, max_rows=10))
    assert [t for t in threading.enumerate() if t.name == "query-watchdog"] == []


# --- errors -------------------------------------------------------------------------------------


def test_errors_of_the_query_become_invalid_sql_with_the_first_line_only(dataset):
    with pytest.raises(InvalidSql) as caught:
        query(dataset, 'SELECT no_such_column FROM "dataset"')
    assert caught.value.message.startswith('Binder Error: Referenced column "no_such_column" not found')
    assert "\n" not in caught.value.message


def test_error_messages_never_show_where_the_dataset_files_are(dataset):
    with pytest.raises(InvalidSql) as caught:
        query(dataset, f"SELECT * FROM read_text('{dataset.files[0]}')")  # Parquet is not UTF-8
    assert "<dataset file>" in caught.value.message
    assert str(Path(dataset.files[0]).parent) not in caught.value.message


def test_a_view_that_cannot_be_opened_is_a_server_error_not_the_users(dataset):
    missing = str(Path(dataset.files[0]).with_name("gone.parquet"))
    with pytest.raises(DatagroveError) as caught:
        run_query("SELECT 1", view_sql=view_over([missing]), files=[missing], limits=LIMITS)
    assert type(caught.value) is DatagroveError


def test_run_query_refuses_a_second_statement_smuggled_past_the_wrapping(dataset):
    with pytest.raises(InvalidSql, match="single SELECT"):
        query(dataset, "SELECT 1) ; CREATE TABLE t AS (SELECT 1")


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1) ; CREATE TABLE t AS (SELECT 1", "SELECT 1) AS q, (SELECT 2", "CREATE TABLE t AS SELECT 1"],
)
def test_a_streamed_query_must_be_one_select_on_its_own_and_wrapped(dataset, sql):
    with pytest.raises(InvalidSql):
        list(stream(dataset, sql))


# --- the lock -----------------------------------------------------------------------------------


def test_the_locked_connection_has_the_sandbox_settings(dataset):
    limits = QueryLimits(timeout_seconds=1, max_rows=1, threads=1, memory_limit="1GB")
    with locked_connection(view_sql=dataset.view_sql, files=dataset.files, limits=limits) as con:
        settings = dict(con.sql("SELECT name, value FROM duckdb_settings()").fetchall())
        [(allowed_paths,)] = con.execute("SELECT current_setting('allowed_paths')").fetchall()
    assert settings["lock_configuration"] == "true"
    assert settings["enable_external_access"] == "false"
    assert settings["python_enable_replacements"] == "false"
    assert settings["autoinstall_known_extensions"] == "false"
    assert settings["autoload_known_extensions"] == "false"
    assert settings["temp_directory"] == ""
    assert settings["threads"] == "1"
    assert sorted(allowed_paths) == sorted(dataset.files)


def test_the_escape_targets_are_readable_without_the_lock(dataset):
    # Without this, a refused escape below could merely mean a wrong path.
    con = duckdb.connect(":memory:")
    assert con.sql(f"SELECT * FROM read_parquet('{dataset.other_parquet}')").fetchall() == [("theirs",)]
    assert con.sql(f"SELECT * FROM read_parquet('{dataset.sibling}')").fetchall() == [("sibling",)]
    assert con.sql(f"SELECT * FROM read_csv('{dataset.other_csv}')").fetchall() == [("theirs",)]
    con.close()


@dataclass(frozen=True)
class Escape:
    sql: str  # with {other_parquet}, {sibling}, {other_csv}, {own_dir}, {scratch} to fill in

    def filled(self, dataset: Dataset) -> str:
        return self.sql.format(
            other_parquet=dataset.other_parquet,
            sibling=dataset.sibling,
            other_csv=dataset.other_csv,
            own_dir=dataset.sibling.parent,
            scratch=dataset.scratch,
        )


ESCAPES = {
    "read_parquet of another dataset": Escape("SELECT * FROM read_parquet('{other_parquet}')"),
    "read_parquet of a sibling file": Escape("SELECT * FROM read_parquet('{sibling}')"),
    "read_parquet of a glob over the dataset directory": Escape(
        "SELECT * FROM read_parquet('{own_dir}/*.parquet')"
    ),
    "read_parquet through ..": Escape("SELECT * FROM read_parquet('{own_dir}/../theirs/part-0.parquet')"),
    "a file path as a table": Escape("SELECT * FROM '{other_parquet}'"),
    "read_csv of another file": Escape("SELECT * FROM read_csv('{other_csv}')"),
    "read_csv of /etc/passwd": Escape("SELECT * FROM read_csv('/etc/passwd')"),
    "/etc/passwd as a table": Escape("SELECT * FROM '/etc/passwd'"),
    "read_text": Escape("SELECT * FROM read_text('/etc/passwd')"),
    "read_text as a scalar subquery": Escape("SELECT (SELECT content FROM read_text('/etc/passwd')) AS c"),
    "read_blob": Escape("SELECT * FROM read_blob('{other_csv}')"),
    "glob": Escape("SELECT * FROM glob('/*')"),
    "COPY TO": Escape("COPY (SELECT 42) TO '{scratch}/copied.csv'"),
    "EXPORT DATABASE": Escape("EXPORT DATABASE '{scratch}/exported'"),
    "ATTACH a file": Escape("ATTACH '{scratch}/attached.db'"),
    "INSTALL": Escape("INSTALL httpfs"),
    "LOAD": Escape("LOAD httpfs"),
    "SET enable_external_access": Escape("SET enable_external_access = true"),
    "SET allowed_directories": Escape("SET allowed_directories = ['/']"),
    "RESET allowed_paths": Escape("RESET allowed_paths"),
    "PRAGMA profiling to a file": Escape("PRAGMA profiling_output = '{scratch}/profile.json'"),
}


@pytest.mark.parametrize("name", ESCAPES)
def test_translation_refuses_the_escape(dataset, name):
    with pytest.raises(InvalidSql):
        translate(ESCAPES[name].filled(dataset), dataset_names=[])


@pytest.mark.parametrize("name", ESCAPES)
def test_run_query_refuses_the_raw_escape(dataset, name):
    with pytest.raises(InvalidSql):
        query(dataset, ESCAPES[name].filled(dataset))
    assert list(dataset.scratch.iterdir()) == []


@pytest.mark.parametrize("name", ESCAPES)
def test_a_streamed_query_refuses_the_raw_escape(dataset, name):
    with pytest.raises(InvalidSql):
        list(stream(dataset, ESCAPES[name].filled(dataset)))
    assert list(dataset.scratch.iterdir()) == []


@pytest.mark.parametrize("name", ESCAPES)
def test_a_query_streamed_as_arrow_batches_refuses_the_raw_escape(dataset, name):
    with pytest.raises(Exception) as caught:  # noqa: PT011 - raised at the start or while reading
        views = {"dataset": dataset.view_sql, "other": dataset.view_sql}
        stream_batches(
            ESCAPES[name].filled(dataset), views=views, files=dataset.files, limits=LIMITS
        ).read_all()
    assert isinstance(batch_error(caught.value), InvalidSql)
    assert list(dataset.scratch.iterdir()) == []


@pytest.mark.parametrize("name", ESCAPES)
def test_the_locked_connection_refuses_the_escape_run_directly(dataset, name):
    with locked_connection(view_sql=dataset.view_sql, files=dataset.files, limits=LIMITS) as con:
        with pytest.raises(duckdb.Error):
            con.execute(ESCAPES[name].filled(dataset)).fetchall()
        # Still locked and still working afterwards.
        assert con.execute("SELECT current_setting('enable_external_access')").fetchall() == [(False,)]
        assert con.execute('SELECT count(*) FROM "dataset"').fetchall() == [(4,)]
    assert list(dataset.scratch.iterdir()) == []


def test_run_query_refuses_writes(dataset):
    with pytest.raises(InvalidSql):
        query(dataset, "CREATE TABLE stolen AS SELECT 1")


def test_a_table_created_on_the_locked_connection_cannot_leave_memory(dataset):
    with locked_connection(view_sql=dataset.view_sql, files=dataset.files, limits=LIMITS) as con:
        con.execute('CREATE TABLE copy AS SELECT * FROM "dataset"')
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"COPY copy TO '{dataset.scratch}/copy.parquet'")
    assert list(dataset.scratch.iterdir()) == []


def test_python_variables_are_not_visible_as_tables(dataset):
    secret_frame = pa.table({"secret": ["in python"]})  # noqa: F841 - found by name, if at all
    control = duckdb.connect(":memory:")
    assert control.sql("SELECT * FROM secret_frame").fetchall() == [("in python",)]
    control.close()
    with pytest.raises(InvalidSql, match="secret_frame"):
        query(dataset, "SELECT * FROM secret_frame")
    with (
        locked_connection(view_sql=dataset.view_sql, files=dataset.files, limits=LIMITS) as con,
        pytest.raises(duckdb.CatalogException),
    ):
        con.sql("SELECT * FROM secret_frame").fetchall()


def test_a_process_that_ran_queries_exits_cleanly(tmp_path: Path) -> None:
    # The sandbox's background threads work inside DuckDB's native code; left running at exit,
    # they made the interpreter abort (status 134, "FATAL: exception not rethrown").
    script = f"""
import pyarrow as pa, pyarrow.parquet as pq
from datagrove.tables.sandbox import QueryLimits, run_query
path = {str(tmp_path / "t.parquet")!r}
pq.write_table(pa.table({{"a": [1, 2, 3]}}), path)
for _ in range(3):
    run_query("SELECT sum(a) FROM dataset", view_sql=f"SELECT * FROM read_parquet(['{{path}}'])",
              files=[path], limits=QueryLimits(timeout_seconds=10, max_rows=10))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"FATAL" not in done.stderr
