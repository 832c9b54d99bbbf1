"""Memory per query: past its memory limit a query spills to a directory of its own, up to the spill
limit, and the directory goes with its database; what cannot spill fails with a clear error."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datagrove.errors import QueryLimitExceeded
from datagrove.tables.sandbox import QueryLimits, run_query
from datagrove.tables.sandbox_pool import IDLE, SpillDirectories, keep_idle

# 2.25 million groups: more than 32MB of hash table, so the aggregate spills.
GROUPS = (
    'SELECT COUNT(*) AS n FROM (SELECT a.n * 100000 + b.n AS k, COUNT(*) AS c FROM "dataset" a, '
    '"dataset" b GROUP BY k)'
)
# One string of millions of pieces, held whole: it cannot spill.
ONE_STRING = (
    "SELECT length(string_agg(a.n::VARCHAR || '-' || b.n::VARCHAR, ',')) FROM \"dataset\" a, \"dataset\" b"
)


@pytest.fixture(autouse=True)
def pool() -> Iterator[None]:
    keep_idle(0)
    keep_idle(4)
    yield
    keep_idle(0)
    keep_idle(4)


@pytest.fixture
def numbers(tmp_path: Path) -> tuple[str, list[str]]:
    path = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"n": list(range(1500))}), path)
    return f"SELECT * FROM read_parquet('{path}')", [str(path)]


def limits(root: Path | None, spill: str = "1GB") -> QueryLimits:
    return QueryLimits(
        timeout_seconds=60,
        max_rows=10,
        memory_limit="32MB",
        spill_root=None if root is None else str(root),
        spill_limit=spill,
    )


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def until_empty(root: Path) -> list[Path]:
    """What is left under ``root`` once the closing thread has had its time."""
    deadline = time.monotonic() + 10
    while list(root.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(root.iterdir())


def run(sql: str, numbers: tuple[str, list[str]], limits: QueryLimits) -> list[dict]:
    view_sql, files = numbers
    return run_query(sql, view_sql=view_sql, files=files, limits=limits).to_pylist()


def test_without_a_spill_directory_a_query_over_its_memory_fails(numbers):
    with pytest.raises(QueryLimitExceeded, match="needed more than 32MB of memory"):
        run(GROUPS, numbers, limits(None))


def test_with_one_it_spills_answers_and_the_directory_goes_with_its_database(numbers, tmp_path):
    root = tmp_path / "spill"
    root.mkdir()
    assert run(GROUPS, numbers, limits(root)) == [{"n": 1500 * 1500}]
    assert len(list(root.iterdir())) == 1  # it did spill, into a directory of its own
    assert len(IDLE) == 1  # a clean query's database waits for reuse, directory and all
    keep_idle(0)
    assert until_empty(root) == []


def test_past_the_spill_limit_it_fails_as_over_its_memory(numbers, tmp_path):
    root = tmp_path / "spill"
    root.mkdir()
    with pytest.raises(QueryLimitExceeded, match="needed more than 32MB of memory"):
        run(GROUPS, numbers, limits(root, spill="0GB"))


def test_what_cannot_spill_fails_and_leaves_nothing_behind(numbers, tmp_path):
    root = tmp_path / "spill"
    root.mkdir()
    with pytest.raises(QueryLimitExceeded, match="needed more than 32MB of memory"):
        run(ONE_STRING, numbers, limits(root))
    assert len(IDLE) == 0
    assert until_empty(root) == []


def test_directories_of_processes_no_longer_running_are_removed_and_live_ones_kept(tmp_path):
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = tmp_path / f"{ended.stdout.strip()}-0a1b"
    live = tmp_path / f"{os.getpid()}-2c3d"
    for directory in (dead, live):
        directory.mkdir()
        (directory / "duckdb_temp_storage.tmp").write_bytes(b"x")
    SpillDirectories.remove_stale(tmp_path)
    assert sorted(tmp_path.iterdir()) == [live]
