"""An import is one commit: queries and exports racing it see the data before or after, never a mix,
and an import that fails changes nothing."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "LONG", "name": "v"}, {"type": "STRING", "name": "batch"}]}
# Distinct sizes, so that a count also tells which batch it belongs to.
BATCH_ROWS = {"A": 20_000, "B": 30_000}
APPEND_ROWS = 5_000
RACE_SECONDS = 20.0


def batch_body(batch: str, rows: int) -> bytes:
    return "".join(f"{v},{batch}\n" for v in range(rows)).encode()


def batch_count_query(client: httpx.Client, dataset_id: str, sql: str) -> list[list[object]]:
    answer = client.post(f"/v1/datasets/query/execute/{dataset_id}", json={"sql": sql})
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"]


def exported_records(client: httpx.Client, dataset_id: str) -> list[tuple[int, str]]:
    exported = client.get(f"/v1/datasets/{dataset_id}/data")
    assert exported.status_code == 200, exported.text
    records = []
    for line in exported.text.splitlines():
        v, batch = line.split(",")
        records.append((int(v), batch.strip('"')))
    return records


def race(
    server: RunningServer,
    write: Callable[[httpx.Client], None],
    readers: list[Callable[[httpx.Client], None]],
) -> None:
    """Call ``write`` once while every reader is called over and over, each thread with its own
    client, until the writer is done (readers give up after RACE_SECONDS). Re-raises the first
    failure of any thread; every reader must have run at least once."""
    done = threading.Event()
    deadline = time.monotonic() + RACE_SECONDS

    def repeat(read: Callable[[httpx.Client], None]) -> int:
        calls = 0
        with server.client() as client:
            while time.monotonic() < deadline and not done.is_set():
                read(client)
                calls += 1
        return calls

    def write_once() -> None:
        try:
            with server.client() as client:
                write(client)
        finally:
            done.set()

    with ThreadPoolExecutor(max_workers=len(readers) + 1) as pool:
        reading = [pool.submit(repeat, read) for read in readers]
        writing = pool.submit(write_once)
        writing.result()
        for future in reading:
            assert future.result() > 0


@pytest.fixture
def client(server: RunningServer):
    with server.client() as client:
        yield client


@pytest.fixture
def dataset(client) -> str:
    """A dataset holding batch A: v = 0..19,999, batch = 'A'."""
    dataset_id = client.post("/v1/datasets", json={"name": "atomicity", "schema": SCHEMA}).json()["id"]
    imported = client.put(f"/v1/datasets/{dataset_id}/data", content=batch_body("A", BATCH_ROWS["A"]))
    assert imported.status_code == 204, imported.text
    return dataset_id


def test_queries_and_exports_racing_replaces_each_see_exactly_one_whole_batch(server, dataset):
    bodies = {batch: batch_body(batch, rows) for batch, rows in BATCH_ROWS.items()}
    seen: dict[str, set[str]] = {"query 1": set(), "query 2": set(), "export": set()}
    give_up_at = time.monotonic() + RACE_SECONDS

    def replace_alternately(client: httpx.Client) -> None:
        # At least 8 replaces (B, A, B, ...), and on until every reader has seen both batches.
        replaces = 0
        while replaces < 8 or not all(batches == {"A", "B"} for batches in seen.values()):
            if time.monotonic() > give_up_at:
                break
            batch = "B" if replaces % 2 == 0 else "A"
            response = client.put(f"/v1/datasets/{dataset}/data?updateMethod=REPLACE", content=bodies[batch])
            assert response.status_code == 204, response.text
            replaces += 1

    def query(name: str) -> Callable[[httpx.Client], None]:
        def read(client: httpx.Client) -> None:
            rows = batch_count_query(client, dataset, "SELECT batch, COUNT(*) FROM table GROUP BY batch")
            assert len(rows) == 1, f"a query saw a mix of batches: {rows}"
            batch, count = rows[0]
            assert count == BATCH_ROWS[batch], f"a query saw part of batch {batch}: {count} rows"
            seen[name].add(batch)

        return read

    def export(client: httpx.Client) -> None:
        records = exported_records(client, dataset)
        batches = Counter(batch for _, batch in records)
        assert len(batches) == 1, f"an export held a mix of batches: {batches}"
        (batch,) = batches
        assert [v for v, _ in records] == list(range(BATCH_ROWS[batch])), f"an export held part of {batch}"
        seen["export"].add(batch)

    race(server, replace_alternately, [query("query 1"), query("query 2"), export])

    assert seen == {"query 1": {"A", "B"}, "query 2": {"A", "B"}, "export": {"A", "B"}}


def test_queries_and_exports_racing_appends_see_only_whole_appends(server, client):
    dataset = client.post("/v1/datasets", json={"name": "appends", "schema": SCHEMA}).json()["id"]
    body = batch_body("A", APPEND_ROWS)
    counts: dict[str, list[int]] = {"query 1": [], "query 2": [], "export": []}
    appended = 0
    give_up_at = time.monotonic() + RACE_SECONDS

    def distinct_counts_seen() -> int:
        return len({count for seen in counts.values() for count in seen})

    def append_repeatedly(client: httpx.Client) -> None:
        # At least 12 appends, and on until the readers have seen appends land (or the race would
        # prove nothing).
        nonlocal appended
        while (appended < 12 or distinct_counts_seen() < 3) and time.monotonic() < give_up_at:
            response = client.put(f"/v1/datasets/{dataset}/data?updateMethod=APPEND", content=body)
            assert response.status_code == 204, response.text
            appended += 1

    def query(name: str) -> Callable[[httpx.Client], None]:
        def read(client: httpx.Client) -> None:
            [[count]] = batch_count_query(client, dataset, "SELECT COUNT(*) FROM table")
            assert count % APPEND_ROWS == 0, f"a query saw part of an append: {count} rows"
            counts[name].append(count)

        return read

    def export(client: httpx.Client) -> None:
        values = [v for v, _ in exported_records(client, dataset)]
        assert len(values) % APPEND_ROWS == 0, f"an export held part of an append: {len(values)} rows"
        assert values == list(range(APPEND_ROWS)) * (len(values) // APPEND_ROWS)
        counts["export"].append(len(values))

    race(server, append_repeatedly, [query("query 1"), query("query 2"), export])

    for name, seen in counts.items():
        assert seen == sorted(seen), f"{name} saw the row count go down: {seen}"
    assert distinct_counts_seen() >= 3
    final = batch_count_query(client, dataset, "SELECT COUNT(*) FROM table")
    assert final == [[appended * APPEND_ROWS]]


@pytest.mark.parametrize("method", ["REPLACE", "APPEND"])
def test_an_import_failing_on_its_last_line_leaves_rows_and_row_count_unchanged(client, dataset, method):
    before = client.get(f"/v1/datasets/{dataset}/data").text
    good_rows = 200_000
    body = batch_body("C", good_rows) + b"not a number,C\n"

    response = client.put(f"/v1/datasets/{dataset}/data?updateMethod={method}", content=body)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_csv"
    assert response.json()["details"]["line"] == good_rows + 1
    assert client.get(f"/v1/datasets/{dataset}/data").text == before
    assert client.get(f"/v1/datasets/{dataset}").json()["rows"] == BATCH_ROWS["A"]
    counts = batch_count_query(client, dataset, "SELECT batch, COUNT(*) FROM table GROUP BY batch")
    assert counts == [["A", BATCH_ROWS["A"]]]
