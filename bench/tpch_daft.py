"""TPC-H Q1 through Daft on a local Ray cluster (``engine=distributed``) against the local DuckDB
path (``engine=local``), over HTTP, in the same run.

Two clusters on this machine, one after the other (``tests/support/ray_cluster.py``: one CPU, 1 GiB
and a 200 MiB object store per node): a head alone (1 node), then a head and one worker (2 nodes).
For each, a server over the same data directory points at it; the dataset (TPC-H lineitem, imported
once) is queried ``--runs`` times with each engine, interleaved so that drift hits both alike, after
one warm-up each. Reported per cluster:

* the first distributed query (the server connects to Ray and Daft starts its workers);
* the fixed cost: a distributed query over a 1-row dataset (planning, scheduling, collecting);
* Q1 on each engine, and the distributed time as a ratio to the local one.

The answers must agree with each other (floats within 1e-9) and with the TPC-H specification's
Q1 at SF1. This is a report of fixed cost and scaling, not a target: on a 2-core machine two Ray
nodes share the cores that DuckDB uses alone.

    ./dg bench tpch_daft [--scale 1] [--runs 3] [--record/--no-record]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from common import ROOT, machine, markdown_table, median, record_section, running_server, text_table, today
from tpch_query import (
    Q1_SF1_ANSWER,
    QUERIES,
    create_dataset,
    import_csv,
    lineitem_csv,
    scale_label,
    verify_checksum,
)

HEADING = "TPC-H Q1 through Daft on Ray (issue 15)"
Q1 = QUERIES[0].mysql


def query(client: httpx.Client, dataset_id: str, sql: str, engine: str) -> tuple[float, list[list[Any]]]:
    """Seconds for one query over HTTP, and its rows."""
    started = time.perf_counter()
    response = client.post(
        f"/v1/datasets/query/execute/{dataset_id}", params={"engine": engine}, json={"sql": sql}, timeout=1800
    )
    response.raise_for_status()
    return time.perf_counter() - started, response.json()["rows"]


def same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right))
    return bool(left == right)


def check_q1(rows: list[list[Any]], scale: float) -> None:
    if scale != 1:
        return
    found = {(row[0], row[1]): (round(row[2]), row[-1]) for row in rows}
    if found != Q1_SF1_ANSWER:
        raise SystemExit(f"Q1 does not give the specification's answer: {found}")


def measure(
    data_dir: Path, workers: int, ids: dict[str, str], csv_path: Path, runs: int, scale: float
) -> list[Any]:
    """One row of the report: the cluster of a head and ``workers`` more nodes."""
    # After ``common``, which puts the repository root (holding ``tests``) on sys.path.
    from tests.support.ray_cluster import ray_cluster

    with (
        ray_cluster(workers=workers) as address,
        running_server(
            data_dir, DATAGROVE_DISTRIBUTED_RAY_ADDRESS=address, DATAGROVE_QUERY_TIMEOUT_SECONDS="1800"
        ) as server,
        server.client() as client,
    ):
        client.timeout = httpx.Timeout(1800)
        if not ids:
            ids["lineitem"] = create_dataset(client, f"lineitem sf{scale_label(scale)}")
            import_csv(client, ids["lineitem"], csv_path)
            tiny = client.post(
                "/v1/datasets",
                json={"name": "one row", "schema": {"columns": [{"type": "LONG", "name": "n"}]}},
            ).json()["id"]
            client.put(f"/v1/datasets/{tiny}/data", content=b"1\n").raise_for_status()
            ids["tiny"] = tiny
        count = "SELECT COUNT(*) AS n FROM table"
        first, _ = query(client, ids["tiny"], count, "distributed")
        _, local_rows = query(client, ids["lineitem"], Q1, "local")  # warm-ups
        _, distributed_rows = query(client, ids["lineitem"], Q1, "distributed")
        if not same(local_rows, distributed_rows):
            raise SystemExit(f"the engines disagree:\nlocal {local_rows}\ndistributed {distributed_rows}")
        check_q1(local_rows, scale)
        fixed, local, distributed = [], [], []
        for _ in range(runs):  # interleaved, so drift hits all alike
            fixed.append(query(client, ids["tiny"], count, "distributed")[0])
            local.append(query(client, ids["lineitem"], Q1, "local")[0])
            distributed.append(query(client, ids["lineitem"], Q1, "distributed")[0])
        files = len(
            list((data_dir / "warehouse").glob(f"*/ds_{ids['lineitem'].replace('-', '')}/data/*.parquet"))
        )
    nodes = f"{workers + 1} node{'s' if workers else ''} ({workers + 1} CPU)"
    return [
        nodes,
        str(files),
        f"{first:.1f}",
        f"{median(fixed):.2f}",
        f"{median(distributed):.2f}",
        f"{median(local):.2f}",
        f"{median(distributed) / median(local):.1f}x",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1 = 6,001,215 rows)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per engine, after one warm-up")
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args(argv)
    record = args.record if args.record is not None else args.scale >= 1
    arguments = " ".join(sys.argv[1:] if argv is None else argv)

    load_average = os.getloadavg()[0]
    csv_path = lineitem_csv(args.scale)
    _, checksum = verify_checksum(csv_path, args.scale)
    print(f"data: {csv_path.relative_to(ROOT)}, {checksum}", flush=True)
    headers = [
        "Ray cluster",
        "lineitem files",
        "first distributed query (s)",
        "fixed cost: 1-row query (s)",
        "Q1 distributed (s)",
        "Q1 local DuckDB (s)",
        "distributed / local",
    ]
    rows = []
    ids: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="dg-bench-daft-") as tmp:
        for workers in (0, 1):
            rows.append(measure(Path(tmp) / "server", workers, ids, csv_path, args.runs, args.scale))
            print(text_table(headers, rows), flush=True)
    body = "\n\n".join(
        [
            f"`./dg bench tpch_daft {arguments}`".replace(" `", "`"),
            f"{today()}; {machine()}; load average {load_average:.1f} at the start (other work running).  \n"
            f"Data: TPC-H lineitem SF{scale_label(args.scale)} from tpchgen-cli, {checksum}. "
            f"Medians of {args.runs} runs after one warm-up each, interleaved; the engines' "
            "answers agree and match the specification's Q1. Each Ray node is one CPU for Ray's "
            "scheduler, but Daft's native executor inside it may use more threads.",
            markdown_table(headers, rows),
        ]
    )
    if record:
        record_section(HEADING, body)
        print("\nrecorded in bench/RESULTS.md")


if __name__ == "__main__":
    main()
