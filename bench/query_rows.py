"""Query answers as row objects: a 1M-row result through ``POST /api/query/v1/execute``, streamed.

Measured in one run on one machine, in rounds (default 3) so that drift hits figure and baseline alike:

* **client rows/s**: from sending ``{"sql": "SELECT * FROM table"}`` to the last byte of the answer (the
  seed document's list of row objects), read as it streams without parsing its rows; the client
  counts the rows and checks the body's CRC-32 against the baseline's; target >= 500,000 rows/s;
* **baseline**: in-process DuckDB (2 threads, like the server) writing the same JSON text into memory,
  with the server's own SQL (``tables.json_rows``) over the dataset's own Parquet files;
* **server peak memory growth**: the server's VmHWM (reset to its RSS just before the request) minus
  its RSS just before the request; target < 100 MB.

Data: generated rows of seven columns, one of each Domo type, imported with one ``PUT …/data``; the
dataset's row count and column sums are checked against the generator's before anything is timed.

Run: ``./dg bench query_rows [--rows 1000000] [--rounds 3]``. The CSV is generated once and cached.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import zlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DATA_DIR, machine, markdown_table, record_section, running_server, today  # noqa: E402
from bench.stream_ingest import cpu_seconds, peak_rss_mb, reset_peak_rss  # noqa: E402
from bench.tpch_query import data_files, file_chunks  # noqa: E402

from datagrove.tables.json_rows import RowForm, rows_json_sql  # noqa: E402
from datagrove.tables.json_stream import BATCH_ROWS, column_text  # noqa: E402

THREADS = 2
SCHEMA = [
    ("customer", "STRING"),
    ("n", "LONG"),
    ("amount", "DOUBLE"),
    ("price", "DECIMAL"),
    ("day", "DATE"),
    ("at", "DATETIME"),
    ("active", "BOOLEAN"),
]
# The generator, as DuckDB SQL over range(rows): deterministic, and with sums known in closed form.
GENERATOR = """
SELECT 'customer-' || lpad(CAST(range * 7919 % 100000 AS VARCHAR), 5, '0') AS customer,
       range AS n,
       range * 0.25 AS amount,
       CAST(range // 100 AS VARCHAR) || '.' || lpad(CAST(range % 100 AS VARCHAR), 2, '0') AS price,
       DATE '2020-01-01' + CAST(range % 3650 AS INTEGER) AS day,
       TIMESTAMP '2020-01-01 00:00:00' + to_seconds(range) + to_milliseconds(CASE WHEN range % 10 = 0 THEN 500 ELSE 0 END) AS at,
       range % 3 = 0 AS active
FROM range({rows})
"""


def expected_sums(rows: int) -> tuple[int, int, float, Decimal]:
    """COUNT(*), SUM(n), SUM(amount), SUM(price) of the generated rows."""
    total = rows * (rows - 1) // 2
    return rows, total, total * 0.25, Decimal(total) / 100


def generated_csv(rows: int) -> Path:
    path = DATA_DIR / "query-rows" / f"rows-{rows}.csv"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    con = duckdb.connect()
    con.execute(
        f"COPY ({GENERATOR.format(rows=rows)}) TO '{partial}' "
        "(FORMAT csv, HEADER false, TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S.%f')"
    )
    con.close()
    partial.replace(path)
    return path


def load(client: httpx.Client, csv: Path, rows: int) -> str:
    """A new dataset holding the CSV, its count and sums checked against the generator's."""
    schema = {"columns": [{"type": t, "name": name} for name, t in SCHEMA]}
    created = client.post("/v1/datasets", json={"name": "query rows", "schema": schema})
    created.raise_for_status()
    dataset_id = str(created.json()["id"])
    client.put(
        f"/v1/datasets/{dataset_id}/data",
        content=file_chunks(csv),
        headers={"Content-Type": "text/csv", "Content-Length": str(csv.stat().st_size)},
        timeout=600,
    ).raise_for_status()
    answer = client.post(
        f"/v1/datasets/query/execute/{dataset_id}",
        json={"sql": "SELECT COUNT(*), SUM(n), SUM(amount), CAST(SUM(price) AS VARCHAR) FROM table"},
    )
    answer.raise_for_status()
    count, n, amount, price = answer.json()["rows"][0]
    found = (count, n, amount, Decimal(price))
    assert found == expected_sums(rows), f"the dataset holds {found}, expected {expected_sums(rows)}"
    return dataset_id


# --- the baseline ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    seconds: float
    rows: int
    crc: int
    bytes: int


def baseline(files: list[Path], rows: int) -> Answer:
    """In-process DuckDB writing the answer's JSON (the server's SQL) into one buffer in memory."""
    con = duckdb.connect(config={"threads": THREADS})
    listed = ", ".join(f"'{f}'" for f in files)
    con.execute(f'CREATE VIEW "dataset" AS SELECT * FROM read_parquet([{listed}])')
    started = time.perf_counter()
    relation = con.sql('SELECT * FROM "dataset"')
    sql = rows_json_sql(
        f'SELECT * FROM "dataset" LIMIT {rows + 1}', relation.columns, relation.types, RowForm.OBJECTS
    )
    body = bytearray(b"[")
    for batch in con.sql(sql).to_arrow_reader(BATCH_ROWS):
        text = column_text(batch.column(0))
        body += text[1:] if len(body) == 1 else text
    body += b"]"
    seconds = time.perf_counter() - started
    con.close()
    return Answer(seconds=seconds, rows=body.count(b"}"), crc=zlib.crc32(body), bytes=len(body))


# --- the server -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served(Answer):
    idle_mb: float
    peak_mb: float  # VmHWM during the request
    server_cpu_seconds: float
    first_row: dict[str, object]

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.idle_mb


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def served(client: httpx.Client, pid: int, dataset_id: str) -> Served:
    """One query answered as row objects, read as it streams: rows counted (the generated strings
    hold no braces, so each ``}`` ends a row) and the body's CRC-32 taken, nothing parsed."""
    idle = rss_mb(pid)
    reset_peak_rss(pid)
    cpu_before = cpu_seconds(pid)
    crc = size = closing = 0
    head = b""
    started = time.perf_counter()
    with client.stream(
        "POST", f"/api/query/v1/execute/{dataset_id}", json={"sql": "SELECT * FROM table"}, timeout=600
    ) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            closing += chunk.count(b"}")
            if len(head) < 400:
                head += chunk[:400]
    seconds = time.perf_counter() - started
    first = json.loads(head[1 : head.index(b"}") + 1])
    return Served(
        seconds=seconds,
        rows=closing,
        crc=crc,
        bytes=size,
        idle_mb=idle,
        peak_mb=peak_rss_mb(pid),
        server_cpu_seconds=cpu_seconds(pid) - cpu_before,
        first_row=first,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args(argv)
    record = args.rows >= 1_000_000 if args.record is None else args.record

    csv = generated_csv(args.rows)
    scratch = DATA_DIR / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    baselines: list[Answer] = []
    answers: list[Served] = []
    with running_server(scratch / f"query-rows-{os.getpid()}") as server, server.client() as client:
        assert server.process is not None
        pid = server.process.pid
        dataset_id = load(client, csv, args.rows)
        files = data_files(server, dataset_id)
        client.post(f"/api/query/v1/execute/{dataset_id}", json={"sql": "SELECT * FROM table LIMIT 10"})
        start_rss = rss_mb(pid)
        for round_number in range(1, args.rounds + 1):
            # The baseline and the server alternate, so that drift hits both alike.
            baselines.append(baseline(files, args.rows))
            answers.append(served(client, pid, dataset_id))
            b, a = baselines[-1], answers[-1]
            assert (a.rows, a.crc, a.bytes) == (b.rows, b.crc, b.bytes) and a.rows == args.rows, (
                f"the answer ({a.rows} rows, crc {a.crc:08x}, {a.bytes} bytes) is not the baseline's "
                f"({b.rows} rows, crc {b.crc:08x}, {b.bytes} bytes)"
            )
            print(
                f"round {round_number}: baseline {b.seconds:.2f} s ({args.rows / b.seconds:,.0f} rows/s); "
                f"HTTP {a.seconds:.2f} s ({args.rows / a.seconds:,.0f} rows/s), server peak +{a.growth_mb:.0f} MB "
                f"over {a.idle_mb:.0f} MB, server CPU {a.server_cpu_seconds:.1f} s",
                flush=True,
            )
    load_after = os.getloadavg()[0]

    first_expected = {
        "customer": "customer-00000",
        "n": 0,
        "amount": 0.0,
        "price": 0.0,
        "day": "2020-01-01",
        "at": "2020-01-01T00:00:00.500000",
        "active": True,
    }
    assert answers[0].first_row == first_expected, answers[0].first_row

    http_rate = statistics.median(args.rows / a.seconds for a in answers)
    base_rate = statistics.median(args.rows / b.seconds for b in baselines)
    ratios = [b.seconds / a.seconds for a, b in zip(answers, baselines, strict=True)]
    growth = max(a.growth_mb for a in answers)
    mb = answers[0].bytes / 1e6

    def spread(values: list[float], fmt: str) -> str:
        return ", ".join(format(v, fmt) for v in values)

    table = markdown_table(
        ["measure", "result", "target"],
        [
            [
                "rows/s at the client, `POST /api/query/v1/execute` (row objects), median",
                f"**{http_rate:,.0f}** ({spread([args.rows / a.seconds for a in answers], ',.0f')})",
                "≥ 500,000 " + ("✓" if http_rate >= 500_000 else "✗"),
            ],
            [
                "baseline: in-process DuckDB writing the same JSON to memory, median",
                f"{base_rate:,.0f} rows/s ({spread([args.rows / b.seconds for b in baselines], ',.0f')})",
                "",
            ],
            [
                "ratio HTTP / baseline (rows/s), median of the rounds",
                f"**{statistics.median(ratios):.2f}x** ({spread(ratios, '.2f')})",
                "",
            ],
            [
                "server peak memory growth over its RSS before the request, highest round",
                f"**{growth:.0f} MB** ({spread([a.growth_mb for a in answers], '.0f')}; "
                f"RSS before the first round {start_rss:.0f} MB)",
                "< 100 MB " + ("✓" if growth < 100 else "✗"),
            ],
            [
                "server CPU per answer, median",
                f"{statistics.median(a.server_cpu_seconds for a in answers):.2f} s",
                "",
            ],
        ],
    )
    body = (
        f"Command: `./dg bench query_rows --rows {args.rows} --rounds {args.rounds}` — {today()}  \n"
        f"Machine: {machine()}; DuckDB {duckdb.__version__}; 1-minute load average {load_before:.1f} at the "
        f"start, {load_after:.1f} at the end  \n"
        f"Data: {args.rows:,} generated rows of 7 columns (STRING, LONG, DOUBLE, DECIMAL, DATE, DATETIME, "
        f"BOOLEAN), count and sums verified after the import; the answer is {mb:.0f} MB of JSON, and every "
        f"round's body matched the baseline's byte for byte (CRC-32, length, {args.rows:,} rows)\n\n{table}\n\n"
        "The client (httpx, one connection) reads the chunked body as it arrives and only counts and checksums "
        "it. The server runs with its defaults (2 DuckDB threads per query, SQLite catalog) in the same machine; "
        "client and server share its 2 cores. Peak memory is VmHWM, reset through /proc/<pid>/clear_refs just "
        "before each request, minus the RSS at that moment."
    )
    print(body)
    if record:
        record_section("Query answers as row objects (issue: Query with SQL)", body)


if __name__ == "__main__":
    main()
