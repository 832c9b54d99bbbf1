"""PostgreSQL connector: TPC-H lineitem copied from the local PostgreSQL into a dataset by a stream run.

Measured in one run on one machine, in rounds (default 3) that alternate baseline and figure, so
drift hits both alike:

* **baseline**: ``psql -c "\\copy (SELECT * FROM <schema>.lineitem) TO '<file>' CSV"`` — PostgreSQL's
  own client writing the query's answer to a local file, as rows per second;
* **figure**: a ``postgresql`` connector stream (REPLACE) of a real server with the same query, timed
  from ``POST /api/data/v1/streams/{id}/executions`` until the execution reads ``SUCCESS`` (polled
  every 0.2 s), as rows per second; target ≥ 0.5× the baseline, as the median of each round's ratio;
* **server peak memory** (VmHWM of the server process, reset just before each run) while it runs,
  highest round; target < 600 MB.

Setup is untimed and cached: the CSV is loaded once into ``dg_bench_tpch_sf<scale>.lineitem``
(kept between runs; reloaded only when its row count or key sums are not the CSV's). After each run
(untimed) the dataset's row count and key sums are checked over ``POST /api/query/v1/execute/{id}``.

Run: ``./dg bench connector_postgres [--scale 1] [--rounds 3] [--record/--no-record]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    DATA_DIR,
    RunningServer,
    machine,
    markdown_table,
    record_section,
    running_server,
    text_table,
    today,
)  # noqa: E402
from bench.stream_ingest import cpu_seconds, peak_rss_mb, reset_peak_rss  # noqa: E402
from bench.tpch_query import (  # noqa: E402
    LINEITEM,
    duckdb_csv_source,
    file_chunks,
    lineitem_csv,
    quiet_duckdb,
    scale_label,
    server_log,
    verify_checksum,
)

HEADING = "PostgreSQL connector run (issue: Connector streams)"
HOST, PORT, USER, DATABASE = "127.0.0.1", 5432, "postgres", "test"
POLL_SECONDS = 0.2
RUN_TIMEOUT_SECONDS = 3600

Sums = tuple[int, int, int, int]  # rows, sum(l_orderkey), sum(l_quantity), sum(l_extendedprice) in cents


def schema_name(scale: float) -> str:
    return "dg_bench_tpch_sf" + re.sub(r"[^0-9a-z]", "_", scale_label(scale))


def csv_sums(csv: Path) -> Sums:
    """The CSV's row count and key sums (the reference every copy is checked against)."""
    con = quiet_duckdb()
    row = con.execute(
        "SELECT count(*), sum(l_orderkey), CAST(sum(l_quantity) AS BIGINT), "
        f"CAST(sum(CAST(l_extendedprice AS DECIMAL(15, 2))) * 100 AS BIGINT) FROM {duckdb_csv_source(csv)}"
    ).fetchone()
    con.close()
    assert row is not None
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3]))


# --- PostgreSQL: the source and the baseline --------------------------------------------------------


def conninfo() -> str:
    return f"host={HOST} port={PORT} user={USER} dbname={DATABASE}"


def table_sums(con: psycopg.Connection[Any], schema: str) -> Sums | None:
    """Row count and key sums of ``schema.lineitem``, or None when there is no such table."""
    exists = con.execute("SELECT to_regclass(%s)", (f"{schema}.lineitem",)).fetchone()
    if exists is None or exists[0] is None:
        return None
    row = con.execute(
        "SELECT count(*), coalesce(sum(l_orderkey), 0), coalesce(sum(l_quantity), 0)::bigint, "
        f"coalesce((sum(l_extendedprice::numeric(15, 2)) * 100), 0)::bigint FROM {schema}.lineitem"
    ).fetchone()
    assert row is not None
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def prepare_source(csv: Path, schema: str, expected: Sums) -> tuple[bool, float]:
    """``schema.lineitem`` holding exactly the CSV; (loaded now?, seconds the load took).

    The money and quantity columns are ``double precision``, as in tpch_query, so the connector maps
    them to DOUBLE like the CSV import does. VACUUM FREEZE sets every row's hint bits, so the first
    timed read does not pay for writing them.
    """
    columns = ", ".join(f"{name} {pg}" for name, _, _, pg in LINEITEM)
    with psycopg.connect(conninfo(), autocommit=True) as con:
        if table_sums(con, schema) == expected:
            return False, 0.0
        started = time.perf_counter()
        con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        con.execute(f"CREATE SCHEMA {schema}")
        con.execute(f"CREATE TABLE {schema}.lineitem ({columns})")
        with con.cursor() as cur, cur.copy(f"COPY {schema}.lineitem FROM STDIN (FORMAT csv)") as copy:
            for chunk in file_chunks(csv, 8 * 1024 * 1024):
                copy.write(chunk)
        con.execute(f"VACUUM (FREEZE, ANALYZE) {schema}.lineitem")
        seconds = time.perf_counter() - started
        found = table_sums(con, schema)
    if found != expected:
        raise SystemExit(f"{schema}.lineitem holds {found} after loading, the CSV {expected}")
    return True, seconds


def psql_copy(query: str, target: Path) -> tuple[float, int]:
    """(seconds, rows) of ``psql \\copy (query) TO target CSV``."""
    command = [
        "psql",
        "-X",  # no ~/.psqlrc
        "-h",
        HOST,
        "-p",
        str(PORT),
        "-U",
        USER,
        "-d",
        DATABASE,
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        f"\\copy ({query}) TO '{target}' CSV",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"psql failed ({done.returncode}): {done.stderr.strip()}")
    match = re.search(r"COPY (\d+)", done.stdout)
    if not match:
        raise SystemExit(f"psql did not report a row count: {done.stdout!r}")
    return seconds, int(match.group(1))


# --- Datagrove: the figure ----------------------------------------------------------------------------


def create_stream(client: httpx.Client, query: str, name: str) -> tuple[str, str]:
    """A postgresql account and a REPLACE connector stream running ``query``; (stream id, dataset id)."""
    account = client.post(
        "/v1/accounts",
        json={
            "name": f"{name} source",
            "type": {
                "id": "postgresql",
                "properties": {
                    "host": HOST,
                    "port": str(PORT),
                    "database": DATABASE,
                    "username": USER,
                    "password": "",
                },
            },
        },
    )
    if account.status_code >= 400:
        raise SystemExit(f"creating the account failed: {account.status_code} {account.text}")
    stream = client.post(
        "/api/data/v1/streams",
        json={
            "transport": {
                "type": "CONNECTOR",
                "description": "com.datagrove.connector.postgresql",
                "version": "1",
            },
            "dataProvider": {"key": "postgresql"},
            "account": {"id": account.json()["id"]},
            "configuration": [{"name": "query", "value": query, "type": "string", "category": "METADATA"}],
            "updateMethod": "REPLACE",
            "dataSource": {"name": name, "description": "connector_postgres benchmark"},
        },
    )
    if stream.status_code >= 400:
        raise SystemExit(f"creating the stream failed: {stream.status_code} {stream.text}")
    body = stream.json()
    return str(body["id"]), str(body["dataSource"]["id"])


@dataclass(frozen=True)
class Run:
    seconds: float
    rows_inserted: int | None  # as the execution reports it
    server_cpu_seconds: float
    server_peak_mb: float  # VmHWM from the run's start to its SUCCESS
    children_peak_mb: float  # highest sampled RSS of the server's child processes, 0 when none
    engine_seconds: float  # the run engine's own time (its "connector run succeeded" log line)
    commit_seconds: float  # of which the stream commit (its "execution committed" log line)


def descendants(pid: int) -> list[int]:
    """The process ids below ``pid`` (a run engine might use worker processes)."""
    found: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            stack += children
    return found


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_stream(server: RunningServer, client: httpx.Client, stream_id: str) -> Run:
    """One manual run of the stream, timed from the request until the execution reads SUCCESS."""
    assert server.process is not None
    pid = server.process.pid
    _, log_start = server_log(server, 0)
    reset_peak_rss(pid)
    cpu_before = cpu_seconds(pid)
    children_peak = 0.0
    started = time.perf_counter()
    response = client.post(f"/api/data/v1/streams/{stream_id}/executions", json={"action": "Manual"})
    if response.status_code >= 400:
        raise SystemExit(f"starting the run failed: {response.status_code} {response.text}")
    execution = response.json()
    execution_id = execution.get("executionId", execution.get("id"))
    while True:
        state = execution.get("currentState")
        if state == "SUCCESS":
            break
        if state not in (None, "ACTIVE", "IDLE"):
            raise SystemExit(f"the run ended {state}: {execution.get('errors')}")
        if time.perf_counter() - started > RUN_TIMEOUT_SECONDS:
            raise SystemExit(f"the run was still {state} after {RUN_TIMEOUT_SECONDS} s")
        time.sleep(POLL_SECONDS)
        children_peak = max(children_peak, sum(rss_mb(child) for child in descendants(pid)))
        polled = client.get(f"/api/data/v1/streams/{stream_id}/executions/{execution_id}")
        polled.raise_for_status()
        execution = polled.json()
    seconds = time.perf_counter() - started
    rows = execution.get("rowsInserted")
    entries, _ = server_log(server, log_start)
    mine = [e for e in entries if e.get("execution") == execution_id]
    engine = next((e["seconds"] for e in mine if e.get("event") == "connector run succeeded"), float("nan"))
    commit = next((e["ms"] / 1000 for e in mine if e.get("event") == "execution committed"), float("nan"))
    return Run(
        seconds=seconds,
        rows_inserted=None if rows is None else int(rows),
        server_cpu_seconds=cpu_seconds(pid) - cpu_before,
        server_peak_mb=peak_rss_mb(pid),
        children_peak_mb=children_peak,
        engine_seconds=engine,
        commit_seconds=commit,
    )


def dataset_sums(client: httpx.Client, dataset_id: str) -> Sums:
    """The dataset's row count and key sums, over the product query API (after timing)."""
    answer = client.post(
        f"/api/query/v1/execute/{dataset_id}",
        json={
            "sql": "SELECT COUNT(*) AS n, SUM(l_orderkey) AS k, SUM(l_quantity) AS q, "
            "SUM(CAST(l_extendedprice AS DECIMAL(15, 2))) * 100 AS p FROM table"
        },
        timeout=600,
    )
    if answer.status_code >= 400:
        raise SystemExit(f"the checksum query failed: {answer.status_code} {answer.text}")
    row = answer.json()[0]
    found = tuple(int(round(float(row[key] or 0))) for key in ("n", "k", "q", "p"))
    return (found[0], found[1], found[2], found[3])


def dataset_columns(client: httpx.Client, dataset_id: str) -> list[tuple[str, str]]:
    """(name, type) of the dataset's schema, as ``GET /v1/datasets/{id}`` shows it."""
    response = client.get(f"/v1/datasets/{dataset_id}")
    response.raise_for_status()
    return [(c["name"], c["type"]) for c in (response.json().get("schema") or {}).get("columns", [])]


# --- the run ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1 = 6,001,215 rows)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one baseline + one connector run")
    parser.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the figures into bench/RESULTS.md (default: only at scale 1 or more)",
    )
    args = parser.parse_args(argv)
    record = args.record if args.record is not None else args.scale >= 1
    arguments = " ".join(sys.argv[1:] if argv is None else argv)

    csv = lineitem_csv(args.scale)
    rows, checksum = verify_checksum(csv, args.scale)
    expected = csv_sums(csv)
    schema = schema_name(args.scale)
    loaded, load_seconds = prepare_source(csv, schema, expected)
    print(
        f"source: {schema}.lineitem, {rows:,} rows "
        + (f"(loaded now in {load_seconds:.1f} s)" if loaded else "(already loaded)")
        + f"; {checksum}",
        flush=True,
    )
    query = f"SELECT * FROM {schema}.lineitem"

    load_before = os.getloadavg()[0]
    scratch = DATA_DIR / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    baselines: list[float] = []
    runs: list[Run] = []
    ratios: list[float] = []
    csv_out_mb = 0.0
    columns: list[tuple[str, str]] = []
    workdir = Path(tempfile.mkdtemp(prefix="connector-postgres-", dir=scratch))
    try:
        env = {"DATAGROVE_CONNECTOR_ALLOWED_HOSTS": HOST}
        with running_server(workdir / "server", **env) as server, server.client() as client:
            assert server.process is not None
            pid = server.process.pid
            idle_mb = rss_mb(pid)
            stream_id, dataset_id = create_stream(client, query, f"lineitem sf{scale_label(args.scale)}")
            for round_number in range(1, args.rounds + 1):
                target = workdir / "baseline.csv"
                seconds, copied = psql_copy(query, target)
                if copied != rows:
                    raise SystemExit(f"psql \\copy wrote {copied:,} rows, expected {rows:,}")
                csv_out_mb = target.stat().st_size / 1e6
                target.unlink()
                baselines.append(seconds)

                run = run_stream(server, client, stream_id)
                found = dataset_sums(client, dataset_id)
                if found != expected:
                    raise SystemExit(
                        f"the dataset holds {found} after round {round_number}, expected {expected}"
                    )
                if run.rows_inserted not in (None, rows):
                    raise SystemExit(
                        f"the execution reports {run.rows_inserted:,} rows inserted, expected {rows:,}"
                    )
                runs.append(run)
                ratios.append(seconds / run.seconds)
                print(
                    f"round {round_number}: psql \\copy {seconds:.2f} s = {rows / seconds:,.0f} rows/s; "
                    f"connector run {run.seconds:.2f} s = {rows / run.seconds:,.0f} rows/s "
                    f"(reading + writing {run.engine_seconds - run.commit_seconds:.2f} s, commit {run.commit_seconds:.2f} s; "
                    f"server CPU {run.server_cpu_seconds:.1f} s, peak {run.server_peak_mb:.0f} MB); "
                    f"ratio {ratios[-1]:.2f}x",
                    flush=True,
                )
            columns = dataset_columns(client, dataset_id)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()[0]

    report = Report(
        arguments=arguments,
        scale=args.scale,
        rounds=args.rounds,
        rows=rows,
        checksum=checksum,
        schema=schema,
        csv_out_mb=csv_out_mb,
        baselines=baselines,
        runs=runs,
        ratios=ratios,
        idle_mb=idle_mb,
        columns=columns,
        load_average=(load_before, load_after),
    )
    print()
    print(report.terminal())
    if record:
        record_section(HEADING, report.markdown())
        print("\nrecorded in bench/RESULTS.md")


@dataclass
class Report:
    arguments: str
    scale: float
    rounds: int
    rows: int
    checksum: str
    schema: str
    csv_out_mb: float
    baselines: list[float]
    runs: list[Run]
    ratios: list[float]
    idle_mb: float
    columns: list[tuple[str, str]]
    load_average: tuple[float, float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def peak_mb(self) -> float:
        return max(r.server_peak_mb + r.children_peak_mb for r in self.runs)

    def rate(self, seconds: float) -> str:
        return f"{self.rows / seconds:,.0f} rows/s"

    def rows_table(self) -> list[list[str]]:
        def spread(values: list[float], digits: int = 2) -> str:
            return ", ".join(f"{v:.{digits}f}" for v in values)

        baseline = statistics.median(self.baselines)
        run = statistics.median(r.seconds for r in self.runs)
        children = max(r.children_peak_mb for r in self.runs)
        return [
            [
                "baseline: `psql \\copy (query) TO file CSV`, median",
                f"{baseline:.2f} s = **{self.rate(baseline)}** ({spread(self.baselines)} s)",
                "",
            ],
            [
                "connector run (`POST …/executions` until SUCCESS), median",
                f"{run:.2f} s = **{self.rate(run)}** ({spread([r.seconds for r in self.runs])} s)",
                "",
            ],
            [
                "  of which reading the source + writing Parquet / commit / queue and polling (medians)",
                f"{statistics.median(r.engine_seconds - r.commit_seconds for r in self.runs):.2f} s / "
                f"{statistics.median(r.commit_seconds for r in self.runs):.2f} s / "
                f"{statistics.median(r.seconds - r.engine_seconds for r in self.runs):.2f} s",
                "",
            ],
            [
                "  server CPU per run (median)",
                f"{statistics.median(r.server_cpu_seconds for r in self.runs):.1f} s",
                "",
            ],
            [
                "ratio to the baseline of the same round, median",
                f"**{self.ratio:.2f}×** ({spread(self.ratios)})",
                "≥ 0.5× " + ("✓" if self.ratio >= 0.5 else "✗"),
            ],
            [
                "server peak memory (VmHWM) while running, highest round",
                f"**{self.peak_mb:.0f} MB** ({spread([r.server_peak_mb for r in self.runs], 0)}; idle "
                f"{self.idle_mb:.0f} MB"
                + (f"; child processes up to {children:.0f} MB" if children else "")
                + ")",
                "< 600 MB " + ("✓" if self.peak_mb < 600 else "✗"),
            ],
        ]

    HEADERS = ("measure", "result", "target")

    def terminal(self) -> str:
        rows = [[cell.replace("**", "").replace("`", "") for cell in row] for row in self.rows_table()]
        return text_table(self.HEADERS, rows)

    def markdown(self) -> str:
        types = ", ".join(f"{name} {kind}" for name, kind in self.columns) or "(not reported)"
        return "\n\n".join(
            [
                f"Command: `./dg bench connector_postgres {self.arguments}` (or `.venv/bin/python "
                f"bench/connector_postgres.py {self.arguments}`) — {today()}  \n"
                f"Machine: {machine()}; 1-minute load average {self.load_average[0]:.1f} at the start, "
                f"{self.load_average[1]:.1f} at the end  \n"
                f"Data: TPC-H lineitem SF{scale_label(self.scale)} from tpchgen-cli, {self.checksum}; loaded "
                f"once into `{self.schema}.lineitem` on the local PostgreSQL (money and quantity columns "
                f"`double precision`, VACUUM FREEZE ANALYZE), kept between runs; after each connector run "
                f"the dataset's row count and key sums are checked over `POST /api/query/v1/execute/{{id}}`",
                markdown_table(self.HEADERS, self.rows_table()),
                f'Each of the {self.rounds} rounds runs `psql -X -c "\\copy (SELECT * FROM '
                f"{self.schema}.lineitem) TO '<file>' CSV\"` ({self.csv_out_mb:.0f} MB written, into the "
                f"benchmark's scratch directory, deleted afterwards) and then one manual run of one "
                f"`postgresql` connector stream (REPLACE, the same query, an account holding the "
                f"connection) of a server on a SQLite catalog with default settings but "
                f"`DATAGROVE_CONNECTOR_ALLOWED_HOSTS=127.0.0.1`. The run is timed from `POST "
                f"/api/data/v1/streams/{{id}}/executions` until `GET …/executions/{{executionId}}` reads "
                f"`SUCCESS` (polled every {POLL_SECONDS} s), so it includes reading the source, writing "
                f"zstd Parquet and the commit; the first round also infers the dataset's schema. "
                f"Dataset schema after the runs: {types}.",
            ]
        )


if __name__ == "__main__":
    main()
