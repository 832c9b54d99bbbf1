"""PyIceberg reading a dataset through Datagrove's Iceberg REST catalog, against reading its files.

An engine outside Datagrove pays two things to read a dataset through the catalog: loading the
table (a token, then ``GET …/tables/{id}``: permission checks, a fold of buffered rows, the metadata
file) and planning its scan from the manifests. This measures both with PyIceberg's ``RestCatalog``
on TPC-H ``lineitem``, and the scan itself (``table.scan().to_arrow()``) against the baseline of
the same process reading the same Parquet files directly with pyarrow (no catalog, no planning).
Every run's rows and ``sum(l_quantity)`` are checked against the imported CSV's checksum.

    ./dg bench iceberg_rest                 # SF 0.1 (600,572 rows), recorded
    ./dg bench iceberg_rest --scale 1       # SF1 (6,001,215 rows)
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.catalog.rest import RestCatalog

from common import (
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
from tpch_query import create_dataset, data_files, import_csv, lineitem_csv, verify_checksum

HEADING = "iceberg_rest: PyIceberg through the REST catalog vs the files directly"


def catalog(server: RunningServer) -> RestCatalog:
    return RestCatalog(
        "datagrove",
        **{
            "uri": f"{server.base_url}/iceberg",
            "credential": f"{server.client_id}:{server.client_secret}",
            "oauth2-server-uri": f"{server.base_url}/iceberg/v1/oauth/tokens",
        },
    )


def quantity_sum(table: pa.Table) -> int:
    return int(pc.sum(table.column("l_quantity")).as_py())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)

    source = lineitem_csv(args.scale)
    rows, checksum = verify_checksum(source, args.scale)
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch, running_server(Path(scratch) / "server") as server:
        with server.client() as client:
            dataset_id = create_dataset(client, "lineitem")
            import_ms = import_csv(client, dataset_id, source)
        files = [str(path) for path in data_files(server, dataset_id)]
        expected_quantity = quantity_sum(pq.read_table(files, columns=["l_quantity"]))

        connect, load, plan, scan, direct = [], [], [], [], []
        for _ in range(args.runs + 1):  # the first run warms caches and is not counted
            # Interleaved: the baseline and the catalog path see the same machine state.
            ms_direct, table_direct = timed(lambda: pq.read_table(files))
            ms_connect, rest = timed(lambda: catalog(server))
            ms_load, table = timed(lambda: rest.load_table(("datagrove", dataset_id)))
            ms_plan, tasks = timed(lambda: list(table.scan().plan_files()))
            ms_scan, scanned = timed(lambda: table.scan().to_arrow())
            for answer in (table_direct, scanned):
                if answer.num_rows != rows or quantity_sum(answer) != expected_quantity:
                    raise SystemExit("the rows read differ from the imported data")
            assert len(tasks) == len(files)
            for series, value in (
                (connect, ms_connect),
                (load, ms_load),
                (plan, ms_plan),
                (scan, ms_scan),
                (direct, ms_direct),
            ):
                series.append(value)
        del connect[0], load[0], plan[0], scan[0], direct[0]

    baseline = median(direct)
    figures = [
        ("token + catalog config (RestCatalog(...))", median(connect)),
        ("load table (GET …/tables/{id})", median(load)),
        ("plan scan (manifests → file tasks)", median(plan)),
        ("scan to Arrow (plan + read)", median(scan)),
        ("load + scan", median(load) + median(scan)),
        ("baseline: pyarrow reads the same files", baseline),
    ]
    table_rows = [[name, f"{ms:,.1f}", f"{ms / baseline:.2f}x"] for name, ms in figures]
    headers = ["step (median of runs)", "ms", "vs baseline"]
    print(text_table(headers, table_rows))
    if not args.record:
        return
    body = (
        f"Run {today()}, `./dg bench iceberg_rest --scale {args.scale:g}` ({args.runs} runs after one "
        f"warm-up, interleaved), load average {load_average:.1f} at the start, on {machine()}.\n\n"
        f"TPC-H lineitem SF {args.scale:g}: {checksum}; imported in {import_ms / 1000:.1f} s into "
        f"{len(files)} data file(s). Local data directory; every read's rows and sum(l_quantity) "
        "checked.\n\n" + markdown_table(headers, table_rows) + "\n\n"
        "The catalog's own cost is the token and the load (one HTTP round trip each: permission "
        "decision, fold check, the metadata file) and PyIceberg's scan planning. It is paid once "
        "per table and does not grow with the table's size; the scan reads the same files as the "
        "baseline, at the same speed."
    )
    record_section(HEADING, body)


if __name__ == "__main__":
    main()
