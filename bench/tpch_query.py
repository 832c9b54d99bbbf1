"""TPC-H ``lineitem`` through the DataSet API: import throughput and query latency over HTTP.

Each figure is a median measured in this run next to its baseline:

* import: ``PUT /v1/datasets/{id}/data`` of the CSV (streamed), against DuckDB converting the same
  CSV to Parquet with its defaults (snappy) in this process;
* queries (TPC-H Q1 and a three-aggregate GROUP BY): ``POST /v1/datasets/query/execute/{id}``
  measured by the client over a keep-alive connection, against the same query in an in-process
  DuckDB (2 threads, as the server) over the dataset's own Parquet files, in-process DuckDB over
  its own default Parquet of the same CSV (the file the import baseline wrote), and PostgreSQL
  over the same CSV loaded with COPY. The answers must agree.

Targets: HTTP ≤ 1.5 × in-process DuckDB on the dataset's files; HTTP ≤ 1.2 × in-process DuckDB
on its own default Parquet (issue 12: what Datagrove writes must scan as fast); ≥ 10 × faster
than PostgreSQL.

The money and quantity columns are DOUBLE (DuckDB's and most engines' usual TPC-H Q1 typing), in
the dataset and in PostgreSQL (``double precision``) alike, so every engine does the same arithmetic.

    ./dg bench tpch_query [--scale 1] [--runs 5] [--pg-runs 3] [--no-postgres] [--pg-decimal]
                          [--record/--no-record]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import httpx
import psycopg

from common import (
    DATA_DIR,
    ROOT,
    RunningServer,
    machine,
    markdown_table,
    median,
    record_section,
    running_server,
    text_table,
    timed,
    today,
)

# name, Domo type, DuckDB type, PostgreSQL type
LINEITEM = [
    ("l_orderkey", "LONG", "BIGINT", "bigint"),
    ("l_partkey", "LONG", "BIGINT", "bigint"),
    ("l_suppkey", "LONG", "BIGINT", "bigint"),
    ("l_linenumber", "LONG", "BIGINT", "bigint"),
    ("l_quantity", "DOUBLE", "DOUBLE", "double precision"),
    ("l_extendedprice", "DOUBLE", "DOUBLE", "double precision"),
    ("l_discount", "DOUBLE", "DOUBLE", "double precision"),
    ("l_tax", "DOUBLE", "DOUBLE", "double precision"),
    ("l_returnflag", "STRING", "VARCHAR", "text"),
    ("l_linestatus", "STRING", "VARCHAR", "text"),
    ("l_shipdate", "DATE", "DATE", "date"),
    ("l_commitdate", "DATE", "DATE", "date"),
    ("l_receiptdate", "DATE", "DATE", "date"),
    ("l_shipinstruct", "STRING", "VARCHAR", "text"),
    ("l_shipmode", "STRING", "VARCHAR", "text"),
    ("l_comment", "STRING", "VARCHAR", "text"),
]
HEADER = ",".join(name for name, *_ in LINEITEM)

# (rows, sum(l_orderkey), sum(l_quantity), sum(l_extendedprice) in cents) of tpchgen-cli's lineitem.
# Row counts are TPC-H's (dbgen); the sums pin every generated value of the key columns.
CHECKSUMS: dict[float, tuple[int, int, int, int]] = {
    0.1: (600_572, 180_224_042_143, 15_334_802, 2_161_592_928_024),
    1.0: (6_001_215, 18_005_322_964_949, 153_078_795, 22_957_731_090_120),
}

# The answer of TPC-H Q1 at scale factor 1 from the TPC-H specification (sum_qty, count_order by
# group): checks the data and every engine against the standard, not only against each other.
Q1_SF1_ANSWER = {
    ("A", "F"): (37_734_107, 1_478_493),
    ("N", "F"): (991_417, 38_854),
    ("N", "O"): (74_476_040, 2_920_374),
    ("R", "F"): (37_719_753, 1_478_870),
}


@dataclass(frozen=True)
class Query:
    """One query in each engine's dialect; ``{table}`` is the engine's name for lineitem."""

    name: str
    mysql: str  # what a Domo client sends; the dataset is called `table`
    duckdb: str
    postgres: str
    key_columns: int  # leading string columns that identify a row (results are compared sorted)


_Q1 = """SELECT l_returnflag, l_linestatus,
       SUM(l_quantity) AS sum_qty,
       SUM(l_extendedprice) AS sum_base_price,
       SUM(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       SUM(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
       AVG(l_quantity) AS avg_qty,
       AVG(l_extendedprice) AS avg_price,
       AVG(l_discount) AS avg_disc,
       COUNT(*) AS count_order
FROM {table}
WHERE l_shipdate <= {cutoff}
GROUP BY l_returnflag, l_linestatus
ORDER BY l_returnflag, l_linestatus"""

_GROUP_BY = """SELECT l_shipmode, SUM(l_quantity) AS sum_qty, AVG(l_extendedprice) AS avg_price, COUNT(*) AS n
FROM {table}
GROUP BY l_shipmode"""

QUERIES = [
    Query(
        name="TPC-H Q1",
        # The specification's 1998-12-01 minus 90 days, in each dialect.
        mysql=_Q1.format(table="table", cutoff="DATE_SUB('1998-12-01', INTERVAL 90 DAY)"),
        duckdb=_Q1.format(table="lineitem", cutoff="CAST('1998-12-01' AS DATE) - INTERVAL 90 DAY"),
        postgres=_Q1.format(table="lineitem", cutoff="DATE '1998-12-01' - INTERVAL '90 days'"),
        key_columns=2,
    ),
    Query(
        name="GROUP BY l_shipmode, 3 aggregates",
        mysql=_GROUP_BY.format(table="table"),
        duckdb=_GROUP_BY.format(table="lineitem"),
        postgres=_GROUP_BY.format(table="lineitem"),
        key_columns=1,
    ),
]

HEADING = "TPC-H queries over HTTP (issue: Foundation)"
THREADS = 2  # the server's default DATAGROVE_QUERY_THREADS and DATAGROVE_INGEST_THREADS


# --- data ---------------------------------------------------------------------------------------


def scale_label(scale: float) -> str:
    return f"{scale:g}"


def lineitem_csv(scale: float) -> Path:
    """bench/data/tpch-sf<scale>/lineitem.csv: no header, comma separated, RFC 4180 quoting.

    Generated once with tpchgen-cli (which writes a header line; it is dropped while streaming).
    """
    target = DATA_DIR / f"tpch-sf{scale_label(scale)}" / "lineitem.csv"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tool = shutil.which("tpchgen-cli") or str(Path(sys.executable).parent / "tpchgen-cli")
    partial = target.with_suffix(".csv.partial")
    print(
        f"generating TPC-H lineitem at scale {scale_label(scale)} -> {target.relative_to(ROOT)}", flush=True
    )
    command = [tool, "csv", "-s", scale_label(scale), "-T", "lineitem", "--stdout", "--quiet"]
    with subprocess.Popen(command, stdout=subprocess.PIPE) as generator, partial.open("wb") as out:
        assert generator.stdout is not None
        header = generator.stdout.readline().decode().strip()
        if header != HEADER:
            generator.kill()
            raise SystemExit(f"unexpected tpchgen-cli header: {header!r}")
        shutil.copyfileobj(generator.stdout, out, 8 * 1024 * 1024)
    if generator.returncode != 0:
        partial.unlink(missing_ok=True)
        raise SystemExit(f"tpchgen-cli failed with exit code {generator.returncode}")
    partial.replace(target)
    return target


def duckdb_csv_source(path: Path) -> str:
    columns = ", ".join(f"'{name}': '{duck}'" for name, _, duck, _ in LINEITEM)
    return f"read_csv('{path}', header = false, delim = ',', quote = '\"', columns = {{{columns}}})"


def quiet_duckdb() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the server's thread count and no progress bar on the terminal."""
    con = duckdb.connect(config={"threads": THREADS})
    con.execute("SET enable_progress_bar = false")
    return con


def verify_checksum(path: Path, scale: float) -> tuple[int, str]:
    """Row count and checksum of the CSV, checked against CHECKSUMS; (rows, a line saying how)."""
    con = quiet_duckdb()
    row = con.execute(
        "SELECT count(*), sum(l_orderkey), CAST(sum(l_quantity) AS BIGINT), "
        f"CAST(sum(CAST(l_extendedprice AS DECIMAL(15, 2))) * 100 AS BIGINT) FROM {duckdb_csv_source(path)}"
    ).fetchone()
    con.close()
    assert row is not None
    found = tuple(int(value) for value in row)
    expected = CHECKSUMS.get(scale)
    summary = (
        f"{found[0]:,} rows, sum(l_orderkey) {found[1]:,}, sum(l_quantity) {found[2]:,}, "
        f"sum(l_extendedprice) {found[3] / 100:,.2f}"
    )
    if expected is None:
        return found[0], f"{summary} (no reference checksum for this scale: not verified)"
    if found != expected:
        raise SystemExit(
            f"checksum mismatch for {path}: found {found}, expected {expected}; delete it to regenerate"
        )
    return found[0], f"{summary} (verified)"


# --- datagrove ----------------------------------------------------------------------------------


def create_dataset(client: httpx.Client, name: str) -> str:
    schema = {"columns": [{"type": domo, "name": name} for name, domo, _, _ in LINEITEM]}
    response = client.post("/v1/datasets", json={"name": name, "schema": schema})
    response.raise_for_status()
    return str(response.json()["id"])


def file_chunks(path: Path, size: int = 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(size):
            yield chunk


def import_csv(client: httpx.Client, dataset_id: str, path: Path) -> float:
    """Milliseconds of one streamed ``PUT …/data?updateMethod=REPLACE``."""

    def put() -> None:
        response = client.put(
            f"/v1/datasets/{dataset_id}/data",
            params={"updateMethod": "REPLACE"},
            content=file_chunks(path),
            headers={"Content-Type": "text/csv", "Content-Length": str(path.stat().st_size)},
            timeout=3600,
        )
        response.raise_for_status()

    ms, _ = timed(put)
    return ms


def http_query(client: httpx.Client, dataset_id: str, sql: str) -> list[tuple[Any, ...]]:
    response = client.post(f"/v1/datasets/query/execute/{dataset_id}", json={"sql": sql}, timeout=600)
    response.raise_for_status()
    return [tuple(row) for row in response.json()["rows"]]


def data_files(server: RunningServer, dataset_id: str) -> list[Path]:
    directory = server.data_dir / "warehouse" / "datagrove" / f"ds_{dataset_id.replace('-', '')}" / "data"
    return sorted(directory.glob("*.parquet"))


def server_log(server: RunningServer, since: int) -> tuple[list[dict[str, Any]], int]:
    """JSON log entries written after byte ``since``, and the new end."""
    data = server.log_path.read_bytes()
    entries = []
    for line in data[since:].splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries, len(data)


# --- baselines ----------------------------------------------------------------------------------


def duckdb_import(path: Path, target: Path) -> float:
    """Milliseconds for DuckDB (same threads) to write the CSV as Parquet with its defaults (snappy,
    its own row groups and dictionaries): the import baseline, and the file of the query baseline
    "DuckDB on its own Parquet"."""
    con = quiet_duckdb()
    ms, _ = timed(
        lambda: con.execute(f"COPY (SELECT * FROM {duckdb_csv_source(path)}) TO '{target}' (FORMAT parquet)")
    )
    con.close()
    return ms


def duckdb_over(files: Sequence[Path]) -> duckdb.DuckDBPyConnection:
    """An in-process DuckDB with the server's threads, lineitem a view over the dataset's Parquet."""
    con = quiet_duckdb()
    listed = ", ".join(f"'{f}'" for f in files)
    con.execute(f"CREATE VIEW lineitem AS SELECT * FROM read_parquet([{listed}])")
    return con


def fetch_all(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


@dataclass
class Postgres:
    conninfo: str
    decimal: bool = False  # money and quantity as numeric(15,2), the TPC-H specification's DECIMAL
    schema: str = field(default_factory=lambda: "dg_bench_" + uuid.uuid4().hex[:12])
    connection: psycopg.Connection[Any] | None = None

    @contextmanager
    def session(self) -> Iterator[Postgres]:
        """A private schema for this run, dropped afterwards whatever happens."""
        with psycopg.connect(self.conninfo, autocommit=True) as con:
            self.connection = con
            con.execute(f'CREATE SCHEMA "{self.schema}"')
            try:
                con.execute(f'SET search_path TO "{self.schema}"')
                yield self
            finally:
                con.execute(f'DROP SCHEMA "{self.schema}" CASCADE')
                self.connection = None

    def load(self, path: Path) -> float:
        """Milliseconds to CREATE TABLE lineitem, COPY the CSV in (streamed) and ANALYZE it."""
        con = self.connection
        assert con is not None
        columns = ", ".join(
            f"{name} {'numeric(15,2)' if self.decimal and pg == 'double precision' else pg}"
            for name, _, _, pg in LINEITEM
        )

        def load() -> None:
            con.execute(f"CREATE TABLE lineitem ({columns})")
            with con.cursor() as cur, cur.copy("COPY lineitem FROM STDIN (FORMAT csv)") as copy:
                for chunk in file_chunks(path):
                    copy.write(chunk)
            con.execute("ANALYZE lineitem")

        ms, _ = timed(load)
        return ms

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        assert self.connection is not None
        return list(self.connection.execute(sql).fetchall())


# --- answers ------------------------------------------------------------------------------------


def normalised(rows: list[tuple[Any, ...]], keys: int) -> list[tuple[Any, ...]]:
    return sorted(
        (tuple(v if i < keys else float(v) for i, v in enumerate(row)) for row in rows),
        key=lambda row: row[:keys],
    )


def check_agree(name: str, answers: dict[str, list[tuple[Any, ...]]], keys: int) -> None:
    """Every engine's answer has the same rows, keys equal, figures equal to 1e-6 relative."""
    (first_engine, first), *others = [(e, normalised(rows, keys)) for e, rows in answers.items()]
    if not first:
        raise SystemExit(f"{name}: {first_engine} returned no rows")
    for engine, rows in others:
        problem = None
        if len(rows) != len(first):
            problem = f"{len(rows)} rows, {first_engine} {len(first)}"
        for a, b in zip(first, rows):
            if a[:keys] != b[:keys] or len(a) != len(b):
                problem = f"row {b} against {a}"
            elif not all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9) for x, y in zip(a[keys:], b[keys:])):
                problem = f"figures {b} against {a}"
        if problem:
            raise SystemExit(f"{name}: {engine} disagrees with {first_engine}: {problem}")


def check_q1_standard(rows: list[tuple[Any, ...]]) -> None:
    found = {(r[0], r[1]): (round(float(r[2])), int(r[9])) for r in rows}
    if found != Q1_SF1_ANSWER:
        raise SystemExit(f"TPC-H Q1 does not give the specification's answer at SF1: {found}")


# --- phases -------------------------------------------------------------------------------------


def server_phases(server: RunningServer, dataset_id: str, sql: str, runs: int) -> dict[str, float]:
    """Median milliseconds of the query service's steps, re-run here with the server's own code.

    Reads the server's catalog and files while it runs (read-only) to attribute the HTTP time.
    """
    from datagrove.tables.sandbox import QueryLimits, locked_connection, run_query
    from datagrove.tables.sql_translate import translate
    from datagrove.tables.store import TableStore
    from datagrove.tables.types import Column, ColumnType

    columns = [Column(name, ColumnType(domo)) for name, domo, _, _ in LINEITEM]
    limits = QueryLimits(timeout_seconds=600, max_rows=1_000_000, threads=THREADS, memory_limit="4GB")
    with tempfile.TemporaryDirectory() as staging:
        store = TableStore(
            catalog_url=f"sqlite:///{server.data_dir / 'catalog.db'}",
            warehouse_dir=server.data_dir / "warehouse",
            staging_dir=Path(staging),
            threads=THREADS,
        )
        samples: dict[str, list[float]] = {"translate": [], "plan": [], "open": [], "run_query": []}
        translated = translate(sql, dataset_names=[dataset_id])
        files = store.current_files(dataset_id)
        view = store.view_sql(columns, files)
        run_query(translated, view_sql=view, files=files, limits=limits)  # warm-up
        for _ in range(runs):
            samples["translate"].append(timed(lambda: translate(sql, dataset_names=[dataset_id]))[0])
            samples["plan"].append(timed(lambda: store.current_files(dataset_id))[0])
            samples["open"].append(
                timed(lambda: locked_connection(view_sql=view, files=files, limits=limits).close())[0]
            )
            samples["run_query"].append(
                timed(lambda: run_query(translated, view_sql=view, files=files, limits=limits))[0]
            )
    return {phase: median(values) for phase, values in samples.items()}


def server_cpu_ms(server: RunningServer) -> float:
    """User + system CPU milliseconds of the server process so far, all threads (10 ms steps)."""
    assert server.process is not None
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


# --- the run ------------------------------------------------------------------------------------


@dataclass
class QueryFigures:
    name: str
    http_ms: float
    duckdb_ms: float
    own_ms: float  # in-process DuckDB over its own default Parquet of the CSV
    postgres_ms: float | None
    server_request_ms: float
    service_ms: float
    phases: dict[str, float]
    # CPU milliseconds per query, all threads: the server process's for an HTTP query, the benchmark
    # process's for in-process DuckDB. Less swayed by other work on the machine than wall time.
    cpu: dict[str, float]

    @property
    def ratio(self) -> float:
        return self.http_ms / self.duckdb_ms

    @property
    def own_ratio(self) -> float:
        return self.http_ms / self.own_ms

    @property
    def speedup(self) -> float | None:
        return None if self.postgres_ms is None else self.postgres_ms / self.http_ms


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1 = 6,001,215 rows)")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per query, after one warm-up")
    parser.add_argument("--pg-runs", type=int, default=3, help="measured PostgreSQL runs per query")
    parser.add_argument("--postgres", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL comparison")
    parser.add_argument(
        "--pg-decimal",
        action="store_true",
        help="type PostgreSQL's money and quantity columns numeric(15,2) instead of double precision",
    )
    parser.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the figures into bench/RESULTS.md (default: only at scale 1 or more)",
    )
    args = parser.parse_args(argv)
    record = args.record if args.record is not None else args.scale >= 1
    arguments = " ".join(sys.argv[1:] if argv is None else argv)

    load_average = os.getloadavg()[0]  # other work on the machine skews every figure
    csv_path = lineitem_csv(args.scale)
    csv_mb = csv_path.stat().st_size / 1e6
    rows, checksum = verify_checksum(csv_path, args.scale)
    print(f"data: {csv_path.relative_to(ROOT)}, {csv_mb:,.0f} MB, {checksum}", flush=True)

    with tempfile.TemporaryDirectory(prefix="dg-bench-") as tmp:
        with running_server(Path(tmp) / "server") as server, server.client() as client:
            dataset_id = create_dataset(client, f"lineitem sf{scale_label(args.scale)}")
            import_ms = import_csv(client, dataset_id, csv_path)
            entries, _ = server_log(server, 0)
            convert_ms = 1000 * next(e["seconds"] for e in entries if e.get("event") == "dataset import")
            baseline_import_ms = duckdb_import(csv_path, Path(tmp) / "baseline.parquet")
            files = data_files(server, dataset_id)
            print(
                f"import: {import_ms / 1000:.1f} s = {csv_mb / import_ms * 1000:.0f} MB/s over HTTP; "
                f"DuckDB CSV->Parquet in process {csv_mb / baseline_import_ms * 1000:.0f} MB/s; "
                f"{len(files)} Parquet file(s), {sum(f.stat().st_size for f in files) / 1e6:.0f} MB",
                flush=True,
            )
            counted = http_query(client, dataset_id, "SELECT COUNT(*) FROM table")
            if counted != [(rows,)]:
                raise SystemExit(f"the dataset holds {counted} rows, the CSV {rows}")

            local = duckdb_over(files)
            own = duckdb_over([Path(tmp) / "baseline.parquet"])
            answers: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
            figures: list[QueryFigures] = []
            for query in QUERIES:
                answers[query.name] = {
                    "datagrove": http_query(client, dataset_id, query.mysql),  # warm-ups
                    "duckdb": fetch_all(local, query.duckdb),
                    "duckdb (own Parquet)": fetch_all(own, query.duckdb),
                }
                _, log_end = server_log(server, 0)
                http, base, own_base = [], [], []
                http_cpu, base_cpu, own_cpu = [], [], []
                for _ in range(args.runs):  # interleaved, so drift hits both alike
                    before = server_cpu_ms(server)
                    http.append(timed(partial(http_query, client, dataset_id, query.mysql))[0])
                    http_cpu.append(server_cpu_ms(server) - before)
                    before = time.process_time() * 1000
                    base.append(timed(partial(fetch_all, local, query.duckdb))[0])
                    base_cpu.append(time.process_time() * 1000 - before)
                    before = time.process_time() * 1000
                    own_base.append(timed(partial(fetch_all, own, query.duckdb))[0])
                    own_cpu.append(time.process_time() * 1000 - before)
                entries, _ = server_log(server, log_end)
                request_ms = [
                    e["ms"] for e in entries if e.get("event") == "request" and "/query/" in e["path"]
                ]
                service_ms = [e["seconds"] * 1000 for e in entries if e.get("event") == "query"]
                figures.append(
                    QueryFigures(
                        name=query.name,
                        http_ms=median(http),
                        duckdb_ms=median(base),
                        own_ms=median(own_base),
                        postgres_ms=None,
                        server_request_ms=median(request_ms),
                        service_ms=median(service_ms),
                        phases=server_phases(server, dataset_id, query.mysql, args.runs),
                        cpu={"http": median(http_cpu), "duckdb": median(base_cpu), "own": median(own_cpu)},
                    )
                )
                print(
                    f"{query.name}: HTTP {median(http):.0f} ms, DuckDB {median(base):.0f} ms, "
                    f"DuckDB on its own Parquet {median(own_base):.0f} ms",
                    flush=True,
                )
            local.close()
            own.close()

        pg_load_ms = None
        if not args.no_postgres:
            with Postgres(args.postgres, decimal=args.pg_decimal).session() as pg:
                pg_load_ms = pg.load(csv_path)
                print(f"PostgreSQL COPY + ANALYZE: {csv_mb / pg_load_ms * 1000:.0f} MB/s", flush=True)
                for query, figure in zip(QUERIES, figures):
                    answers[query.name]["postgresql"] = pg.query(query.postgres)  # warm-up
                    figure.postgres_ms = median(
                        [timed(partial(pg.query, query.postgres))[0] for _ in range(args.pg_runs)]
                    )
                    print(f"{query.name}: PostgreSQL {figure.postgres_ms:.0f} ms", flush=True)

    for query in QUERIES:
        check_agree(query.name, answers[query.name], query.key_columns)
    if args.scale == 1:
        check_q1_standard(answers[QUERIES[0].name]["datagrove"])
    agreed = ", ".join(answers[QUERIES[0].name])

    report = Report(
        arguments=arguments,
        pg_decimal=args.pg_decimal,
        scale=args.scale,
        runs=args.runs,
        pg_runs=args.pg_runs,
        csv_mb=csv_mb,
        checksum=checksum,
        import_ms=import_ms,
        convert_ms=convert_ms,
        baseline_import_ms=baseline_import_ms,
        pg_load_ms=pg_load_ms,
        figures=figures,
        load_average=(load_average, os.getloadavg()[0]),
        agreed=agreed + (" and the TPC-H specification's Q1 answer" if args.scale == 1 else ""),
    )
    print()
    print(report.terminal())
    if record:
        record_section(HEADING, report.markdown())
        print(f"\nrecorded in {Path('bench/RESULTS.md')}")


@dataclass
class Report:
    arguments: str
    pg_decimal: bool
    scale: float
    runs: int
    pg_runs: int
    csv_mb: float
    checksum: str
    import_ms: float
    convert_ms: float  # of import_ms: the server's conversion and commit, after it had the body
    baseline_import_ms: float
    pg_load_ms: float | None
    figures: list[QueryFigures]
    agreed: str
    load_average: tuple[float, float]  # at the start and the end

    def query_rows(self) -> list[list[str]]:
        return [
            [
                f.name,
                f"{f.http_ms:.0f}",
                f"{f.duckdb_ms:.0f}",
                f"{f.ratio:.2f}× {'✓' if f.ratio <= 1.5 else '✗'}",
                f"{f.own_ms:.0f}",
                f"{f.own_ratio:.2f}× {'✓' if f.own_ratio <= 1.2 else '✗'}",
                "—" if f.postgres_ms is None else f"{f.postgres_ms:.0f}",
                "—" if f.speedup is None else f"{f.speedup:.1f}× {'✓' if f.speedup >= 10 else '✗'}",
            ]
            for f in self.figures
        ]

    QUERY_HEADERS = (
        "query",
        "datagrove HTTP ms",
        "in-process DuckDB ms",
        "ratio (≤ 1.5)",
        "DuckDB on its own Parquet ms",
        "HTTP / that (≤ 1.2)",
        "PostgreSQL ms",
        "speedup vs PostgreSQL (≥ 10)",
    )
    PHASE_HEADERS = (
        "query",
        "client HTTP",
        "server request",
        "query service",
        "run_query (sandbox + run)",
        "open + close a new locked DuckDB",
        "Iceberg plan",
        "translate",
        "in-process DuckDB",
    )

    def phase_rows(self) -> list[list[str]]:
        return [
            [
                f.name,
                f"{f.http_ms:.0f}",
                f"{f.server_request_ms:.0f}",
                f"{f.service_ms:.0f}",
                f"{f.phases['run_query']:.0f}",
                f"{f.phases['open']:.1f}",
                f"{f.phases['plan']:.1f}",
                f"{f.phases['translate']:.1f}",
                f"{f.duckdb_ms:.0f}",
            ]
            for f in self.figures
        ]

    CPU_HEADERS = (
        "query",
        "datagrove server CPU ms",
        "in-process DuckDB CPU ms",
        "ratio",
        "DuckDB on its own Parquet CPU ms",
        "server / that",
    )

    def cpu_rows(self) -> list[list[str]]:
        return [
            [
                f.name,
                f"{f.cpu['http']:.0f}",
                f"{f.cpu['duckdb']:.0f}",
                f"{f.cpu['http'] / f.cpu['duckdb']:.2f}×",
                f"{f.cpu['own']:.0f}",
                f"{f.cpu['http'] / f.cpu['own']:.2f}×",
            ]
            for f in self.figures
        ]

    def import_line(self) -> str:
        line = (
            f"Import (`PUT …/data`, {self.csv_mb:,.0f} MB CSV streamed): {self.import_ms / 1000:.1f} s = "
            f"**{self.csv_mb / self.import_ms * 1000:.0f} MB/s**; in-process DuckDB CSV → Parquet (its defaults) "
            f"{self.csv_mb / self.baseline_import_ms * 1000:.0f} MB/s (ratio "
            f"{self.import_ms / self.baseline_import_ms:.2f}×). Of the import, "
            f"{(self.import_ms - self.convert_ms) / 1000:.1f} s went to receiving the body and "
            f"{self.convert_ms / 1000:.1f} s to converting ({self.csv_mb / self.convert_ms * 1000:.0f} MB/s) "
            "and committing it"
        )
        if self.pg_load_ms is not None:
            line += f"; PostgreSQL COPY + ANALYZE {self.csv_mb / self.pg_load_ms * 1000:.0f} MB/s"
        return line + "."

    def terminal(self) -> str:
        return "\n\n".join(
            [
                text_table(self.QUERY_HEADERS, self.query_rows()),
                self.import_line().replace("**", "").replace("`", ""),
                "where the HTTP time goes (medians, ms):\n"
                + text_table(self.PHASE_HEADERS, self.phase_rows()),
                "CPU time per query (medians, ms, all threads):\n"
                + text_table(self.CPU_HEADERS, self.cpu_rows()),
                f"answers agree: {self.agreed}",
            ]
        )

    def markdown(self) -> str:
        return "\n\n".join(
            [
                f"Command: `./dg bench tpch_query {self.arguments}` (or `.venv/bin/python "
                f"bench/tpch_query.py {self.arguments}`) — {today()}  \n"
                f"Machine: {machine()}; DuckDB {duckdb.__version__}; 1-minute load average "
                f"{self.load_average[0]:.1f} at the start, {self.load_average[1]:.1f} at the end  \n"
                f"Data: TPC-H lineitem SF{scale_label(self.scale)} from tpchgen-cli, {self.checksum}  \n"
                f"Medians of {self.runs} runs after one warm-up (PostgreSQL: {self.pg_runs}); "
                f"HTTP and in-process DuckDB runs interleaved.",
                markdown_table(self.QUERY_HEADERS, self.query_rows()),
                self.import_line(),
                "Where the HTTP time goes (medians, ms). *Server request* is the server's own log line "
                "(`ms`), *query service* its `query` line; the next four columns re-run the service's "
                "steps in the benchmark process with the server's code (`run_query` = take the locked "
                "DuckDB, reused as in the server (an idle one of the same views, files and limits: "
                "`DATAGROVE_QUERY_SANDBOX_POOL`, default 4) + run + fetch Arrow; *open + close* = what a "
                "new one would cost instead).",
                markdown_table(self.PHASE_HEADERS, self.phase_rows()),
                "CPU time per query (medians of the same runs, ms, all threads): the server process's "
                "for an HTTP query (from /proc, 10 ms steps), the benchmark process's for in-process "
                "DuckDB. On a shared machine it moves less than wall time; it is not the target's measure.",
                markdown_table(self.CPU_HEADERS, self.cpu_rows()),
                f"Answers agree (row counts, keys, figures to 1e-6 relative): {self.agreed}.",
                "Method: money and quantity columns are DOUBLE in the dataset, as in DuckDB's TPC-H Q1, "
                + (
                    "and `numeric(15,2)` (the specification's DECIMAL) in PostgreSQL; "
                    if self.pg_decimal
                    else "and `double precision` in PostgreSQL, so every engine does the same arithmetic; "
                )
                + "Q1 is sent as MySQL "
                "(`DATE_SUB('1998-12-01', INTERVAL 90 DAY)`, the dataset named `table`) and run by the "
                "baselines in their own dialects. The baseline is one persistent in-process DuckDB connection "
                "(2 threads, like the server) with a view over the dataset's own Parquet files; the second is "
                "the same over the Parquet file DuckDB wrote from the CSV with its defaults (the import "
                "baseline's), so its ratio holds Datagrove's file layout and HTTP path together. "
                "PostgreSQL is the local server with its configuration as found (parallel workers "
                "allowed), the table loaded with COPY and ANALYZEd, times measured by psycopg.",
            ]
        )


if __name__ == "__main__":
    main()
