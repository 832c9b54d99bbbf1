"""The postgresql connector's source on a real PostgreSQL: batch sizes whatever Arrow's block size."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from datagrove.connectors.base import RunContext
from datagrove.connectors.network import NetworkPolicy
from datagrove.connectors.postgresql import BLOCK_BYTES, PostgresqlConnector
from datagrove.domain import UpdateMethod
from tests.support.sources import Database, postgres_source

ROWS = 30_000


@pytest.fixture(scope="module")
def pg() -> Iterator[Database]:
    with postgres_source() as source:
        # ~130 bytes a row: the COPY's CSV spans several of Arrow's blocks.
        source.execute(
            "CREATE TABLE wide (id bigint, note text)",
            f"INSERT INTO wide SELECT g, repeat('x', 120) FROM generate_series(1, {ROWS}) g",
        )
        yield source


def read(pg: Database, *, batch_rows: int, cursor: str = "") -> tuple[list[pa.RecordBatch], dict[str, str]]:
    context = RunContext(
        config={"query": "SELECT id, note FROM wide ORDER BY id", "cursorColumn": cursor},
        credentials=pg.credentials(),
        account_type="postgresql",
        columns=[],
        state={},
        update_method=UpdateMethod.REPLACE,
        network=NetworkPolicy(allowed=("127.0.0.1",)),
        cancelled=lambda: False,
        batch_rows=batch_rows,
    )
    source = PostgresqlConnector().open(context)
    try:
        batches = list(source.batches())
        return batches, dict(source.state())
    finally:
        source.close()


def test_blocks_are_joined_into_batches_of_batch_rows(pg: Database) -> None:
    assert ROWS * 130 > 3 * BLOCK_BYTES
    batches, _ = read(pg, batch_rows=10_000)
    sizes = [b.num_rows for b in batches]
    assert sum(sizes) == ROWS
    assert all(size >= 10_000 for size in sizes[:-1])
    assert len(batches) <= 3
    ids = pa.concat_arrays([b.column("id") for b in batches]).to_pylist()
    assert ids == list(range(1, ROWS + 1))


def test_a_batch_rows_below_a_block_still_gives_every_row_once(pg: Database) -> None:
    batches, _ = read(pg, batch_rows=100)
    ids = pa.concat_arrays([b.column("id") for b in batches]).to_pylist()
    assert ids == list(range(1, ROWS + 1))


def test_the_cursor_state_is_the_largest_value_of_the_joined_batches(pg: Database) -> None:
    _, state = read(pg, batch_rows=10_000, cursor="id")
    assert state == {"cursor": str(ROWS)}
