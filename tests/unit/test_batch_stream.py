"""A query's answer as Arrow batches: several views, bounded batches, errors that keep their kind,
and a sandbox that is given back however the reader ends (read out, failed, closed, dropped)."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datagrove.errors import DatagroveError, InvalidSql, QueryLimitExceeded
from datagrove.tables.batch_stream import batch_error, stream_batches
from datagrove.tables.sandbox import QueryLimits

LIMITS = QueryLimits(timeout_seconds=10, max_rows=10)  # max_rows does not apply to a stored answer
ROWS = 100_000


class Released:
    """Counts the calls of a reader's on_close."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    people = tmp_path / "people.parquet"
    orders = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["ann", "bob", "cy"]}), people)
    pq.write_table(
        pa.table({"person": list(range(ROWS)), "amount": [float(n % 7) for n in range(ROWS)]}), orders
    )
    return {"people": str(people), "orders": str(orders)}


def start(
    files: dict[str, str], sql: str, limits: QueryLimits = LIMITS, **kwargs: object
) -> pa.RecordBatchReader:
    views = {name: f"SELECT * FROM read_parquet('{path}')" for name, path in files.items()}
    return stream_batches(sql, views=views, files=list(files.values()), limits=limits, **kwargs)  # type: ignore[arg-type]


def watchdogs() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "query-watchdog")


def test_a_query_joins_its_views(files):
    sql = 'SELECT p.name, count(*) AS n FROM "people" p JOIN "orders" o ON o.person = p.id GROUP BY 1 ORDER BY 1'
    assert start(files, sql).read_all().to_pylist() == [
        {"name": "ann", "n": 1},
        {"name": "bob", "n": 1},
        {"name": "cy", "n": 1},
    ]


def test_a_long_answer_comes_in_several_batches_none_longer_than_asked(files):
    reader = start(files, 'SELECT * FROM "orders"', batch_rows=8192)
    sizes = [batch.num_rows for batch in reader]
    assert sum(sizes) == ROWS  # no row limit: the answer is stored, not sent
    assert len(sizes) > 1
    assert max(sizes) <= 8192
    assert 0 not in sizes


def test_the_schema_is_known_before_the_first_batch(files):
    reader = start(files, 'SELECT name, id * 2 AS twice FROM "people"')
    assert reader.schema.names == ["name", "twice"]
    reader.close()


@pytest.mark.parametrize("how", ["read to the end", "closed early", "closed before reading", "dropped"])
def test_the_sandbox_is_given_back_however_the_reader_ends(files, how):
    released = Released()
    before = watchdogs()
    reader = start(files, 'SELECT * FROM "orders"', on_close=released, batch_rows=1000)
    if how == "read to the end":
        reader.read_all()
    elif how == "closed early":
        reader.read_next_batch()
        reader.close()
    elif how == "closed before reading":
        reader.close()
    else:
        reader.read_next_batch()
        del reader
        gc.collect()
    assert released.calls == 1
    assert watchdogs() == before


def test_an_error_before_the_first_row_is_raised_at_the_start_and_leaves_the_release_to_the_caller(files):
    released = Released()
    with pytest.raises(InvalidSql) as caught:
        start(files, 'SELECT nope FROM "people"', on_close=released)
    assert "nope" in caught.value.message
    assert released.calls == 0


def test_an_error_while_reading_comes_back_as_ours_and_releases_the_sandbox(files):
    released = Released()
    slow = 'SELECT a.person FROM "orders" a, "orders" b'  # 10^10 rows: only the timeout ends it
    reader = start(files, slow, limits=QueryLimits(timeout_seconds=1, max_rows=10), on_close=released)
    started = time.monotonic()
    with pytest.raises(Exception) as caught:  # noqa: PT011 - an Arrow error carrying ours
        for _ in reader:
            pass
    assert time.monotonic() - started < 10
    error = batch_error(caught.value)
    assert isinstance(error, QueryLimitExceeded)
    assert error.message == "the query ran longer than 1 s; filter, aggregate or add a LIMIT"
    assert released.calls == 1


def test_batch_error_knows_only_its_own_errors():
    assert batch_error(ValueError("something else")) is None
    ours = InvalidSql("bad")
    assert batch_error(ours) is ours
    restored = batch_error(pa.ArrowInvalid("Invalid: [datagrove:internal_error] the query engine failed"))
    assert type(restored) is DatagroveError
    assert restored.message == "the query engine failed"
