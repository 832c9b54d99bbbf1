"""Stream API ingest: TPC-H lineitem as 8 gzip parts, 4 uploaded at a time, committed, queryable.

Measured in one run on one machine, in rounds (default 3) so that drift hits figure and baseline alike:

* **end to end**: from the first part upload to the moment ``COUNT(*)`` over HTTP answers the new row
  count (execution created, 8 parts uploaded 4 at a time, commit, query), as MB/s of CSV;
* **baseline**: the fastest in-process CSV -> Parquet conversion of the same file in the same round
  (Polars, DuckDB, pyarrow; 2 threads where the library takes a setting); target end to end >= 0.6x it,
  as the median over the rounds of each round's ratio;
* **server peak memory** (VmHWM of the server process, reset before each ingest) while ingesting, in
  the highest round; target < 600 MB;
* **commit latency** of an execution with 100 parts (median of 3); target < 1 s.

After each ingest (untimed) the dataset's row count and key sums are checked against the file's.

Run: ``./dg bench stream_ingest [--scale 1] [--rounds 3]``. The parts are prepared before timing and cached.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
from isal import igzip

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DATA_DIR, machine, markdown_table, record_section, running_server, today  # noqa: E402
from bench.tpch_query import CHECKSUMS, LINEITEM, lineitem_csv, scale_label, verify_checksum  # noqa: E402

from datagrove.tables.parquet_layout import DEFAULT_CODEC  # noqa: E402

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


BASELINES = (("Polars", polars_baseline), ("DuckDB", duckdb_baseline), ("pyarrow", pyarrow_baseline))


# --- datagrove --------------------------------------------------------------------------------------


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss(pid: int) -> None:
    """Restart VmHWM from the current RSS (Linux >= 4.0), so a peak belongs to what follows."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Ingest:
    seconds: float  # end to end
    upload_seconds: float
    commit_seconds: float
    server_cpu_seconds: float
    server_peak_mb: float  # VmHWM from the first upload to the COUNT(*) answer
    dataset_id: str


def ingest(client: httpx.Client, pid: int, parts: list[Path], rows: int) -> Ingest:
    """One REPLACE execution of ``parts`` into a new stream, timed until COUNT(*) answers ``rows``."""
    stream = client.post(
        "/v1/streams", json={"dataSet": {"name": "lineitem", "schema": SCHEMA}, "updateMethod": "REPLACE"}
    )
    stream.raise_for_status()
    sid, dataset_id = stream.json()["id"], stream.json()["dataSet"]["id"]
    bodies = [p.read_bytes() for p in parts]  # read before timing: the client's disk is not measured

    reset_peak_rss(pid)
    cpu_before = cpu_seconds(pid)
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
    return Ingest(
        seconds=finished - started,
        upload_seconds=uploaded - started,
        commit_seconds=committed - uploaded,
        server_cpu_seconds=cpu_seconds(pid) - cpu_before,
        server_peak_mb=peak_rss_mb(pid),
        dataset_id=dataset_id,
    )


def verify_dataset(client: httpx.Client, dataset_id: str, expected: tuple[int, int, int, int]) -> None:
    """The dataset holds exactly the generated rows: count and the key columns' sums (after timing)."""
    answer = client.post(
        f"/v1/datasets/query/execute/{dataset_id}",
        json={
            "sql": "SELECT COUNT(*), SUM(l_orderkey), SUM(l_quantity), "
            "SUM(CAST(l_extendedprice AS DECIMAL(15, 2))) * 100 FROM table"
        },
    )
    answer.raise_for_status()
    found = tuple(int(round(float(v))) for v in answer.json()["rows"][0])
    assert found == expected, f"dataset {dataset_id} holds {found}, expected {expected}"


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


def conversions(log: Path) -> Counter[str]:
    """How many parts each conversion wrote, from the server's "part staged" log lines."""
    counts: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        if '"part staged"' in line:
            counts[json.loads(line)["conversion"]] += 1
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of baselines + one ingest each")
    args = parser.parse_args(argv)

    csv = lineitem_csv(args.scale)
    rows, checksum = verify_checksum(csv, args.scale)
    expected = CHECKSUMS[args.scale]
    parts = gzip_parts(csv, args.scale)
    csv_mb = csv.stat().st_size / 1e6
    gz_mb = sum(p.stat().st_size for p in parts) / 1e6
    print(f"{csv.name}: {csv_mb:.0f} MB CSV, {rows:,} rows; {PARTS} gzip parts, {gz_mb:.0f} MB", flush=True)

    scratch = DATA_DIR / "scratch"
    scratch.mkdir(exist_ok=True)
    load_before = os.getloadavg()[0]
    baselines: dict[str, list[float]] = {name: [] for name, _ in BASELINES}
    ingests: list[Ingest] = []
    ratios: list[float] = []
    data_dir = scratch / f"server-{os.getpid()}"
    with running_server(data_dir) as server, server.client() as client:
        assert server.process is not None
        pid = server.process.pid
        idle_mb = peak_rss_mb(pid)
        for round_number in range(1, args.rounds + 1):
            # Each round times the baselines and then the ingest, so drift hits both alike.
            for name, run in BASELINES:
                target = scratch / f"baseline-{name}.parquet"
                baselines[name].append(run(csv, target))
                target.unlink(missing_ok=True)
            done = ingest(client, pid, parts, rows)
            verify_dataset(client, done.dataset_id, expected)
            ingests.append(done)
            best = min(baselines[name][-1] for name, _ in BASELINES)
            ratios.append(best / done.seconds)
            print(
                f"round {round_number}: "
                + ", ".join(f"{name} {baselines[name][-1]:.2f} s" for name, _ in BASELINES)
                + f"; datagrove {done.seconds:.2f} s (server CPU {done.server_cpu_seconds:.1f} s); "
                f"ratio {ratios[-1]:.2f}x",
                flush=True,
            )
        peak_mb = max(i.server_peak_mb for i in ingests)
        latencies = [commit_latency(client) for _ in range(3)]
        converted = conversions(server.log_path)
    load_after = os.getloadavg()[0]

    total = statistics.median(i.seconds for i in ingests)
    end_to_end_mbps = csv_mb / total
    ratio = statistics.median(ratios)
    latency = statistics.median(latencies)
    median_baselines = {name: statistics.median(times) for name, times in baselines.items()}
    best_name = min(median_baselines, key=lambda n: median_baselines[n])

    def spread(values: list[float], digits: int = 2) -> str:
        return ", ".join(f"{v:.{digits}f}" for v in values)

    table = markdown_table(
        ["measure", "result", "target"],
        [
            [
                "end to end (8 gzip parts, 4 at a time, commit, COUNT(*) answers), median",
                f"{total:.2f} s = **{end_to_end_mbps:.0f} MB/s** of CSV ({spread([i.seconds for i in ingests])})",
                "",
            ],
            [
                "  of which uploading + converting / committing (median)",
                f"{statistics.median(i.upload_seconds for i in ingests):.2f} s / "
                f"{statistics.median(i.commit_seconds for i in ingests):.2f} s",
                "",
            ],
            [
                "  server CPU per ingest (median)",
                f"{statistics.median(i.server_cpu_seconds for i in ingests):.1f} s",
                "",
            ],
            *[
                [
                    f"baseline: {name} CSV -> Parquet in-process, median",
                    f"{median_baselines[name]:.2f} s = {csv_mb / median_baselines[name]:.0f} MB/s "
                    f"({spread(baselines[name])})",
                    "",
                ]
                for name, _ in BASELINES
            ],
            [
                "ratio to the fastest baseline of the same round, median",
                f"**{ratio:.2f}x** ({spread(ratios)}; fastest by median: {best_name})",
                "≥ 0.6x " + ("✓" if ratio >= 0.6 else "✗"),
            ],
            [
                "server peak memory (VmHWM) while ingesting, highest round",
                f"**{peak_mb:.0f} MB** ({spread([i.server_peak_mb for i in ingests], 0)}; idle {idle_mb:.0f} MB)",
                "< 600 MB " + ("✓" if peak_mb < 600 else "✗"),
            ],
            [
                "commit latency, 100 parts (median of 3)",
                f"**{latency * 1000:.0f} ms** ({', '.join(f'{x * 1000:.0f}' for x in latencies)})",
                "< 1 s " + ("✓" if latency < 1 else "✗"),
            ],
        ],
    )
    converted_text = ", ".join(f"{count} {name}" for name, count in sorted(converted.items()))
    body = (
        f"Command: `./dg bench stream_ingest --scale {scale_label(args.scale)} --rounds {args.rounds}` — "
        f"{today()}  \n"
        f"Machine: {machine()}; 1-minute load average {load_before:.1f} at the start, {load_after:.1f} at the end  \n"
        f"Data: TPC-H lineitem SF{scale_label(args.scale)}, {csv_mb:.0f} MB CSV, {checksum}; "
        f"{PARTS} parts gzipped with ISA-L level 1 before timing ({gz_mb:.0f} MB); after each ingest the "
        f"dataset's row count and key sums are checked against the file's\n\n{table}\n\n"
        f"Each round runs the three baselines and then one ingest into a new stream of the same server. "
        f"Server settings are the defaults (conversions at once: one per core), SQLite catalog, local data "
        f"directory. Parts converted, counting the commit latency runs' parts: {converted_text} ("
        f"canonical: the fast path; strict: the DuckDB conversion). The baselines convert the same file once per "
        f"round each, with 2 threads where the library takes a setting and their default Parquet compression, "
        f"and check nothing; Datagrove writes {DEFAULT_CODEC} Parquet and validates every value (the Domo CSV dialect) "
        f"on the way."
    )
    print(body)
    record_section("Stream API ingest (issue: Stream API)", body)


if __name__ == "__main__":
    main()
