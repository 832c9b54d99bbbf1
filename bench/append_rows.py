"""One-row appends: 32 clients appending single rows to one dataset for 30 s, on one server.

Measured in one run on one machine:

* **appends per second** acknowledged (``200``), every one verified present exactly once afterwards
  by a query that counts the rows and their distinct numbers; target >= 2,000/s;
* **latency** p50 and p99 of the acknowledged appends;
* **Parquet files and snapshots** the appends created, read with PyIceberg after the buffer has been
  folded; target <= 1 file per 5,000 rows;
* **baseline**: the same clients, same run, sending ``GET /health`` (the cheapest request the server
  answers, one catalog round trip): the ratio says what an append costs beside the HTTP floor.

The load comes from ``bench/loadgen.py`` (keep-alive connections on one event loop, pre-encoded
requests), in this process; the server is a subprocess with its own data directory.

Run: ``./dg bench append_rows [--seconds 30] [--clients 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, markdown_table, record_section, running_server, text_table, today  # noqa: E402
from bench.loadgen import Outcome, percentile, request_bytes, run_load  # noqa: E402

SCHEMA = {
    "columns": [
        {"type": "LONG", "name": "n"},
        {"type": "STRING", "name": "client"},
        {"type": "DATETIME", "name": "at"},
    ]
}


def rate(outcome: Outcome, seconds: float) -> float:
    return outcome.statuses.get(200, 0) / seconds


def appends(
    port: int, host: str, token: str, dataset_id: str, clients: int, seconds: float
) -> tuple[Outcome, float, set[int]]:
    path = f"/api/data/v3/datasources/{dataset_id}/uploads"
    headers = {"X-DOMO-Developer-Token": token, "Content-Type": "application/json"}
    acknowledged: set[int] = set()

    def make(client: int, n: int) -> bytes:
        number = client * 10_000_000 + n
        body = json.dumps({"values": f"{number},c{client},2026-12-01 10:00:00", "delimiter": ","}).encode()
        return request_bytes("POST", path, host=host, headers=headers, body=body)

    def answered(client: int, n: int, status: int, _body: bytes) -> None:
        if status == 200:
            acknowledged.add(client * 10_000_000 + n)

    started = time.perf_counter()
    outcome = asyncio.run(
        run_load(port=port, connections=clients, seconds=seconds, make_request=make, on_answer=answered)
    )
    return outcome, time.perf_counter() - started, acknowledged


def health(port: int, host: str, clients: int, seconds: float) -> tuple[Outcome, float]:
    started = time.perf_counter()
    outcome = asyncio.run(
        run_load(
            port=port,
            connections=clients,
            seconds=seconds,
            make_request=lambda _c, _n: request_bytes("GET", "/health", host=host, headers={}),
        )
    )
    return outcome, time.perf_counter() - started


def iceberg_table(server, dataset_id: str):  # type: ignore[no-untyped-def]
    """The dataset's table as PyIceberg, an outside reader, sees it."""
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(
        "datagrove",
        uri=f"sqlite:///{server.data_dir.resolve() / 'catalog.db'}",
        warehouse=(server.data_dir / "warehouse").resolve().as_uri(),
    )
    return catalog.load_table(f"datagrove.ds_{dataset_id.replace('-', '')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()

    # Buffers are folded after 20 s at the latest (not the default 300), so the run ends folded.
    with (
        tempfile.TemporaryDirectory(prefix="bench-append-") as scratch,
        running_server(Path(scratch) / "data", DATAGROVE_APPEND_FOLD_SECONDS="20") as server,
    ):
        with server.client() as client:
            created = client.post("/v1/datasets", json={"name": "appends", "schema": SCHEMA})
            dataset_id = created.json()["id"]
            # One append first: the writer's first group commit warms its connection up.
            client.post(
                f"/api/data/v3/datasources/{dataset_id}/uploads", json={"values": "0,warm-up,2026-12-01"}
            )
        time.sleep(3)  # let the server's start-up warm-up finish
        floor, floor_seconds = health(server.port, server.host, args.clients, min(10.0, args.seconds))
        outcome, elapsed, acknowledged = appends(
            server.port, server.host, server.token, dataset_id, args.clients, args.seconds
        )
        with server.client() as client:
            answer = client.post(
                f"/v1/datasets/query/execute/{dataset_id}",
                json={"sql": "SELECT count(*), count(DISTINCT n) FROM table WHERE client <> 'warm-up'"},
            ).json()["rows"][0]
            present = {
                row[0]
                for row in client.post(
                    f"/v1/datasets/query/execute/{dataset_id}",
                    json={"sql": "SELECT n FROM table WHERE client <> 'warm-up'"},
                ).json()["rows"]
            }
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # until the buffer is folded into the table
                rows = client.get(f"/v1/datasets/{dataset_id}").json()["rows"]
                if iceberg_table(server, dataset_id).scan().to_arrow().num_rows == rows:
                    break
                time.sleep(1)
        table_now = iceberg_table(server, dataset_id)
        files, snapshots = len(list(table_now.scan().plan_files())), len(table_now.metadata.snapshots)

    count, distinct = answer
    per_second = rate(outcome, elapsed)
    floor_rate = rate(floor, floor_seconds)
    lost = len(acknowledged - present)
    rows_per_file = (count + 1) / max(files, 1)
    table = [
        ("acknowledged appends / s", f"{per_second:,.0f}", ">= 2,000", "✓" if per_second >= 2000 else "✗"),
        (
            "p50 / p99 latency",
            f"{percentile(outcome.latencies, 0.5) * 1000:.1f} / {percentile(outcome.latencies, 0.99) * 1000:.1f} ms",
            "",
            "",
        ),
        (
            "acknowledged, then present exactly once",
            f"{len(acknowledged):,} of {len(acknowledged):,}"
            if not lost and count == distinct
            else f"{lost} lost, {count - distinct} doubled",
            "all",
            "✓" if not lost and count == distinct else "✗",
        ),
        (
            "answers other than 200 / unanswered",
            f"{sum(v for k, v in outcome.statuses.items() if k != 200)} / {outcome.unanswered}",
            "0 / 0",
            "",
        ),
        ("Parquet files / snapshots", f"{files} / {snapshots}", "", ""),
        ("rows per Parquet file", f"{rows_per_file:,.0f}", ">= 5,000", "✓" if rows_per_file >= 5000 else "✗"),
        ("baseline: GET /health / s (same clients)", f"{floor_rate:,.0f}", "", ""),
        ("appends / s ÷ baseline", f"{per_second / floor_rate:.2f}×", "", ""),
    ]
    headers = ("measure", "result", "target", "")
    print(text_table(headers, table))
    command = f"./dg bench append_rows --seconds {args.seconds:g} --clients {args.clients}"
    record_section(
        "One-row appends",
        f"`{command}` — {today()}, {machine()}.\n\n"
        f"{args.clients} clients each send `POST /api/data/v3/datasources/{{id}}/uploads` with one row "
        f'(`{{"values": "<n>,c<client>,2026-12-01 10:00:00", "delimiter": ","}}`, a developer token) '
        f"and wait for the answer, for {args.seconds:g} s; the load generator runs in the benchmark's process "
        f"on the same 2 cores. Afterwards a query checks that every acknowledged row is present exactly once, "
        f"and PyIceberg counts the table's files and snapshots once the buffer is folded.\n\n"
        + markdown_table(headers, table),
    )


if __name__ == "__main__":
    main()
