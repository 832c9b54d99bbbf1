"""Stream API ingest: TPC-H lineitem as 8 gzip parts, 4 uploaded at a time, committed, queryable.

Measured in one run on one machine:

* **end to end**: from the first part upload to the moment ``COUNT(*)`` over HTTP answers the new row
  count (execution created, 8 parts uploaded 4 at a time, commit, query), as MB/s of CSV;
* **baseline**: the fastest in-process CSV -> Parquet conversion of the same file (Polars, DuckDB,
  pyarrow; each once, 2 threads where the library takes a setting); target end to end >= 0.6x it;
* **server peak memory** (VmHWM of the server process) while ingesting; target < 600 MB;
* **commit latency** of an execution with 100 parts (median of 3); target < 1 s.

Run: ``./dg bench stream_ingest [--scale 1]``. The parts are prepared before timing and cached.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import httpx
from isal import igzip

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DATA_DIR, machine, markdown_table, record_section, running_server, today  # noqa: E402
from bench.tpch_query import LINEITEM, lineitem_csv, scale_label, verify_checksum  # noqa: E402

ANALYSIS = """

Where the gap to the 0.6x target is (measured on a 1M-row sample of the same file, quiet machine): the
conversion itself runs at ~138 MB/s against ~220 MB/s for DuckDB's plain typed CSV reader. The difference is
validation of Domo's dialect: every field is read as text and cast with checks, because DuckDB's typed reader
silently accepts what must be refused (`1.5` rounded to 2, `1e3` and `0x10` in LONG, a time of day in DATE)
and refuses what must be accepted (a quoted `""` as NULL in typed columns). Parquet compression is not the
cost (zstd/snappy/lz4/none all within 15 %). Conversions at once: one two-thread conversion 110-115 MB/s,
two one-thread conversions 115-129 MB/s, two two-thread ones 112 MB/s and over the memory target. The
ingest is CPU-bound, so overlapping upload and conversion cannot close the gap; see "Stream API ingest:
notes" for where the CPU goes and what was tried."""

PARTS = 8
PARALLEL = 4
THREADS = 2
SCHEMA = {"columns": [{"type": domo, "name": name} for name, domo, _, _ in LINEITEM]}


def gzip_parts(csv: Path, scale: float) -> list[Path]:
    """The CSV split on line boundaries into PARTS gzip files (lineitem has no quoted newlines)."""
    folder = DATA_DIR / f"tpch-sf{scale_label(scale)}" / f"parts-{PARTS}"
    parts = [folder / f"part-{index + 1}.csv.gz" for index in range(PARTS)]
    if all(p.exists() for p in parts):
        return parts
    folder.mkdir(parents=True, exist_ok=True)
    size = csv.stat().st_size
    with csv.open("rb") as source:
        for index, target in enumerate(parts):
            end = size if index == PARTS - 1 else (index + 1) * size // PARTS
            remaining = end - source.tell()
            data = source.read(remaining)
            if index < PARTS - 1:
                data += source.readline()  # finish the line that crosses the boundary
            partial = target.with_suffix(".partial")
            partial.write_bytes(igzip.compress(data, compresslevel=1))
            partial.replace(target)
    return parts


# --- baselines ------------------------------------------------------------------------------------


def polars_baseline(csv: Path, target: Path) -> float:
    import polars as pl

    schema = {
        name: {"LONG": pl.Int64, "DOUBLE": pl.Float64, "DATE": pl.Date, "STRING": pl.String}[domo]
        for name, domo, _, _ in LINEITEM
    }
    started = time.perf_counter()
    pl.scan_csv(csv, has_header=False, new_columns=list(schema), schema=schema).sink_parquet(target)
    return time.perf_counter() - started


def duckdb_baseline(csv: Path, target: Path) -> float:
    con = duckdb.connect(config={"threads": THREADS})
    columns = ", ".join(f"'{name}': '{duck}'" for name, _, duck, _ in LINEITEM)
    started = time.perf_counter()
    con.execute(
        f"COPY (SELECT * FROM read_csv('{csv}', header = false, auto_detect = false, columns = {{{columns}}})) "
        f"TO '{target}' (FORMAT parquet)"
    )
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed


def pyarrow_baseline(csv: Path, target: Path) -> float:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    types = {"LONG": pa.int64(), "DOUBLE": pa.float64(), "DATE": pa.date32(), "STRING": pa.string()}
    names = [name for name, *_ in LINEITEM]
    started = time.perf_counter()
    reader = pacsv.open_csv(
        csv,
        read_options=pacsv.ReadOptions(column_names=names, block_size=16 << 20),
        convert_options=pacsv.ConvertOptions(column_types={n: types[d] for n, d, _, _ in LINEITEM}),
    )
    with pq.ParquetWriter(target, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
    return time.perf_counter() - started


# --- datagrove --------------------------------------------------------------------------------------


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ingest(client: httpx.Client, parts: list[Path], rows: int) -> tuple[float, float, float]:
    """(seconds end to end, seconds uploading, seconds committing) for one REPLACE execution."""
    stream = client.post(
        "/v1/streams", json={"dataSet": {"name": "lineitem", "schema": SCHEMA}, "updateMethod": "REPLACE"}
    )
    stream.raise_for_status()
    sid, dataset_id = stream.json()["id"], stream.json()["dataSet"]["id"]
    bodies = [p.read_bytes() for p in parts]  # read before timing: the client's disk is not measured

    started = time.perf_counter()
    execution = client.post(f"/v1/streams/{sid}/executions").json()["id"]

    def upload(index: int) -> None:
        response = client.put(
            f"/v1/streams/{sid}/executions/{execution}/part/{index + 1}",
            content=bodies[index],
            headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
        )
        response.raise_for_status()

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(upload, range(len(bodies))))
    uploaded = time.perf_counter()
    client.put(f"/v1/streams/{sid}/executions/{execution}/commit").raise_for_status()
    committed = time.perf_counter()
    count = client.post(
        f"/v1/datasets/query/execute/{dataset_id}", json={"sql": "SELECT COUNT(*) FROM table"}
    )
    finished = time.perf_counter()
    assert count.json()["rows"][0][0] == rows, count.text
    return finished - started, uploaded - started, committed - uploaded


def commit_latency(client: httpx.Client, parts: int = 100) -> float:
    """Seconds for the commit request of an execution with ``parts`` staged parts (1,000 rows each)."""
    stream = client.post("/v1/streams", json={"dataSet": {"name": "many parts", "schema": SCHEMA}})
    sid = stream.json()["id"]
    execution = client.post(f"/v1/streams/{sid}/executions").json()["id"]
    row = "1,155190,7706,1,17,21168.23,0.04,0.02,N,O,1996-03-13,1996-02-12,1996-03-22,DELIVER IN PERSON,TRUCK,x\n"
    body = (row * 1000).encode()

    def upload(index: int) -> None:
        client.put(f"/v1/streams/{sid}/executions/{execution}/part/{index}", content=body).raise_for_status()

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(upload, range(parts)))
    started = time.perf_counter()
    client.put(f"/v1/streams/{sid}/executions/{execution}/commit").raise_for_status()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)

    csv = lineitem_csv(args.scale)
    rows, checksum = verify_checksum(csv, args.scale)
    parts = gzip_parts(csv, args.scale)
    csv_mb = csv.stat().st_size / 1e6
    gz_mb = sum(p.stat().st_size for p in parts) / 1e6
    print(f"{csv.name}: {csv_mb:.0f} MB CSV, {rows:,} rows; {PARTS} gzip parts, {gz_mb:.0f} MB", flush=True)

    scratch = DATA_DIR / "scratch"
    scratch.mkdir(exist_ok=True)
    baselines = {}
    for name, run in (
        ("Polars", polars_baseline),
        ("DuckDB", duckdb_baseline),
        ("pyarrow", pyarrow_baseline),
    ):
        target = scratch / f"baseline-{name}.parquet"
        baselines[name] = run(csv, target)
        target.unlink(missing_ok=True)
        print(f"baseline {name}: {baselines[name]:.2f} s = {csv_mb / baselines[name]:.0f} MB/s", flush=True)
    best_name = min(baselines, key=lambda n: baselines[n])
    best_mbps = csv_mb / baselines[best_name]

    data_dir = scratch / f"server-{os.getpid()}"
    with running_server(data_dir) as server, server.client() as client:
        assert server.process is not None
        idle_mb = peak_rss_mb(server.process.pid)
        total, upload_s, commit_s = ingest(client, parts, rows)
        peak_mb = peak_rss_mb(server.process.pid)
        latencies = [commit_latency(client) for _ in range(3)]
    end_to_end_mbps = csv_mb / total
    ratio = end_to_end_mbps / best_mbps
    latency = statistics.median(latencies)

    table = markdown_table(
        ["measure", "result", "target"],
        [
            [
                "end to end (8 gzip parts, 4 at a time, commit, COUNT(*) answers)",
                f"{total:.2f} s = **{end_to_end_mbps:.0f} MB/s** of CSV",
                "",
            ],
            ["  of which uploading + converting / committing", f"{upload_s:.2f} s / {commit_s:.2f} s", ""],
            *[
                [
                    f"baseline: {n} CSV -> Parquet in-process",
                    f"{baselines[n]:.2f} s = {csv_mb / baselines[n]:.0f} MB/s",
                    "",
                ]
                for n in baselines
            ],
            [
                "ratio to the fastest baseline",
                f"**{ratio:.2f}x** ({best_name})",
                "≥ 0.6x " + ("✓" if ratio >= 0.6 else "✗"),
            ],
            [
                "server peak memory (VmHWM) while ingesting",
                f"**{peak_mb:.0f} MB** (idle {idle_mb:.0f} MB)",
                "< 600 MB " + ("✓" if peak_mb < 600 else "✗"),
            ],
            [
                "commit latency, 100 parts (median of 3)",
                f"**{latency * 1000:.0f} ms** ({', '.join(f'{x * 1000:.0f}' for x in latencies)})",
                "< 1 s " + ("✓" if latency < 1 else "✗"),
            ],
        ],
    )
    body = (
        f"Command: `./dg bench stream_ingest --scale {scale_label(args.scale)}` — {today()}  \n"
        f"Machine: {machine()}  \n"
        f"Data: TPC-H lineitem SF{scale_label(args.scale)}, {csv_mb:.0f} MB CSV, {checksum}; "
        f"{PARTS} parts gzipped with ISA-L level 1 before timing ({gz_mb:.0f} MB)\n\n{table}\n\n"
        "Server settings are the defaults (conversions at once: cores / 2 = 1, 2 DuckDB threads each), "
        "SQLite catalog, local data directory. The baselines convert the same file once each with 2 threads "
        "where the library takes a setting, with their default Parquet compression; Datagrove writes zstd "
        "Parquet and validates every value (the Domo CSV dialect) on the way." + ANALYSIS
    )
    print(body)
    record_section("Stream API ingest (issue: Stream API)", body)


if __name__ == "__main__":
    main()
