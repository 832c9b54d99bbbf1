"""Stream API ingest spread over 1, 2 and 3 server processes on one PostgreSQL catalog and one bucket.

A report, not a target: this machine has two cores, so three processes share what one already nearly
fills, and moto (the bucket, a Python process) shares them too. What it shows is that spreading one
execution's parts over nodes works at full size and what it costs or gains here; on machines of their
own, nodes add their cores.

Three nodes are started once, on a fresh PostgreSQL schema (``--postgres``) and one moto bucket on
loopback. Each round ingests the same TPC-H lineitem CSV, as 8 gzip parts, once per node count N: the
client creates the stream and the execution on node 1, uploads the parts 4 at a time round-robin over
nodes 1..N (part i to node i mod N), commits on node 1 and waits for ``COUNT(*)`` there; the other
nodes are running but idle. Rounds alternate the node counts, so drift hits all alike. After each
ingest (untimed) the dataset's row count and key sums are checked, and the dataset is deleted.

Printed per N: end to end as MB/s of CSV, the upload and commit phases, the nodes' CPU (sum) and the
highest peak memory of one node (VmHWM, reset before each ingest), and the ratio to 1 node, the
median over rounds of each round's ratio.

    ./dg bench ingest_nodes [--scale 1] [--rounds 3] [--record/--no-record]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, markdown_table, record_section, text_table, today  # noqa: E402
from bench.stream_ingest import (  # noqa: E402
    PARALLEL,
    PARTS,
    SCHEMA,
    cpu_seconds,
    gzip_parts,
    peak_rss_mb,
    reset_peak_rss,
    verify_dataset,
)
from bench.tpch_query import CHECKSUMS, lineitem_csv, scale_label, verify_checksum  # noqa: E402
from tests.support.server import RunningServer  # noqa: E402

HEADING = "Stream API ingest on 1, 2 and 3 nodes (issue 12)"
NODES = (1, 2, 3)


@dataclass(frozen=True)
class Spread:
    nodes: int
    seconds: float
    upload_seconds: float
    commit_seconds: float
    cpu_seconds: float  # all nodes' CPU during the ingest
    peak_mb: float  # the highest VmHWM of one node
    dataset_id: str


@contextmanager
def cluster(count: int, catalog_url: str, env: dict[str, str], root: Path) -> Iterator[list[RunningServer]]:
    """``count`` server processes on one catalog and one bucket: the first migrates the catalog and
    creates the bootstrap credentials, the others share them (and the keys in ``env``)."""
    with ExitStack() as stack:
        first = RunningServer(data_dir=root / "node1", catalog_url=catalog_url, extra_env=env).start()
        stack.callback(first.stop)
        nodes = [first]
        for index in range(2, count + 1):
            node = RunningServer(
                data_dir=root / f"node{index}",
                catalog_url=catalog_url,
                extra_env=env,
                client_id=first.client_id,
                client_secret=first.client_secret,
                token=first.token,
            ).start()
            stack.callback(node.stop)
            nodes.append(node)
        yield nodes


def pid(node: RunningServer) -> int:
    assert node.process is not None
    return node.process.pid


def spread_ingest(
    nodes: list[RunningServer], clients: list[httpx.Client], parts: list[Path], rows: int
) -> Spread:
    """One REPLACE execution whose parts go round-robin to ``nodes``; committed on the first."""
    first = clients[0]
    stream = first.post(
        "/v1/streams", json={"dataSet": {"name": "lineitem", "schema": SCHEMA}, "updateMethod": "REPLACE"}
    )
    stream.raise_for_status()
    sid, dataset_id = stream.json()["id"], stream.json()["dataSet"]["id"]
    bodies = [p.read_bytes() for p in parts]  # read before timing: the client's disk is not measured

    for node in nodes:
        reset_peak_rss(pid(node))
    cpu_before = sum(cpu_seconds(pid(node)) for node in nodes)
    started = time.perf_counter()
    execution = first.post(f"/v1/streams/{sid}/executions").json()["id"]

    def upload(index: int) -> None:
        response = clients[index % len(clients)].put(
            f"/v1/streams/{sid}/executions/{execution}/part/{index + 1}",
            content=bodies[index],
            headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
        )
        response.raise_for_status()

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(upload, range(len(bodies))))
    uploaded = time.perf_counter()
    first.put(f"/v1/streams/{sid}/executions/{execution}/commit").raise_for_status()
    committed = time.perf_counter()
    count = first.post(f"/v1/datasets/query/execute/{dataset_id}", json={"sql": "SELECT COUNT(*) FROM table"})
    finished = time.perf_counter()
    assert count.json()["rows"][0][0] == rows, count.text
    return Spread(
        nodes=len(nodes),
        seconds=finished - started,
        upload_seconds=uploaded - started,
        commit_seconds=committed - uploaded,
        cpu_seconds=sum(cpu_seconds(pid(node)) for node in nodes) - cpu_before,
        peak_mb=max(peak_rss_mb(pid(node)) for node in nodes),
        dataset_id=dataset_id,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1 = 6,001,215 rows)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one ingest per node count")
    parser.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the figures into bench/RESULTS.md (default: only at scale 1 or more)",
    )
    args = parser.parse_args(argv)
    # Imported here: ``bench.common`` (imported above) puts the repository root on sys.path.
    from tests.support.postgres import private_schema
    from tests.support.s3 import moto_server

    record = args.record if args.record is not None else args.scale >= 1
    csv = lineitem_csv(args.scale)
    rows, checksum = verify_checksum(csv, args.scale)
    expected = CHECKSUMS[args.scale]
    parts = gzip_parts(csv, args.scale)
    csv_mb = csv.stat().st_size / 1e6
    gz_mb = sum(p.stat().st_size for p in parts) / 1e6
    print(f"{csv.name}: {csv_mb:.0f} MB CSV, {rows:,} rows; {PARTS} gzip parts, {gz_mb:.0f} MB", flush=True)

    load_before = os.getloadavg()[0]
    results: dict[int, list[Spread]] = {n: [] for n in NODES}
    with (
        tempfile.TemporaryDirectory(prefix="dg-bench-nodes-") as tmp,
        moto_server(Path(tmp) / "moto") as moto,
        private_schema() as catalog_url,
    ):
        env = {
            **moto.env(moto.new_bucket()),
            "DATAGROVE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
            "DATAGROVE_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
        with cluster(max(NODES), catalog_url, env, Path(tmp)) as nodes, ExitStack() as stack:
            clients = [stack.enter_context(node.client()) for node in nodes]
            for round_number in range(1, args.rounds + 1):
                for n in NODES:
                    done = spread_ingest(nodes[:n], clients[:n], parts, rows)
                    verify_dataset(clients[0], done.dataset_id, expected)
                    clients[0].delete(f"/v1/datasets/{done.dataset_id}").raise_for_status()
                    results[n].append(done)
                    print(
                        f"round {round_number}, {n} node(s): {done.seconds:.2f} s (upload "
                        f"{done.upload_seconds:.2f} s, commit {done.commit_seconds:.2f} s), nodes' CPU "
                        f"{done.cpu_seconds:.1f} s, peak {done.peak_mb:.0f} MB",
                        flush=True,
                    )
    load_after = os.getloadavg()[0]

    def med(n: int, field: str) -> float:
        return statistics.median(getattr(s, field) for s in results[n])

    headers = [
        "nodes",
        "end to end s (median)",
        "MB/s of CSV",
        "throughput × 1 node (median of rounds)",
        "upload + convert s",
        "commit s",
        "nodes' CPU s",
        "peak MB of one node",
    ]
    table = [
        [
            n,
            f"{med(n, 'seconds'):.2f} ({', '.join(f'{s.seconds:.2f}' for s in results[n])})",
            f"{csv_mb / med(n, 'seconds'):.0f}",
            f"{statistics.median(one.seconds / s.seconds for one, s in zip(results[1], results[n], strict=True)):.2f}×",
            f"{med(n, 'upload_seconds'):.2f}",
            f"{med(n, 'commit_seconds'):.2f}",
            f"{med(n, 'cpu_seconds'):.1f}",
            f"{max(s.peak_mb for s in results[n]):.0f}",
        ]
        for n in NODES
    ]
    print(text_table(headers, table))
    if not record:
        return
    arguments = " ".join(sys.argv[1:] if argv is None else argv)
    body = "\n".join(
        [
            f"Command: `{' '.join(['./dg bench ingest_nodes', arguments]).strip()}` — {today()}  ",
            f"Machine: {machine()}; 1-minute load average {load_before:.1f} at the start, "
            f"{load_after:.1f} at the end  ",
            f"Data: TPC-H lineitem SF{scale_label(args.scale)}, {csv_mb:.0f} MB CSV, {checksum}; {PARTS} parts "
            f"gzipped before timing ({gz_mb:.0f} MB), uploaded {PARALLEL} at a time round-robin over the "
            f"nodes, committed on node 1; {args.rounds} rounds, the node counts alternating; after each "
            "ingest the dataset's row count and key sums are checked.",
            "",
            markdown_table(headers, table),
            "",
            "**A report, not a target.** Three server processes (defaults) on one PostgreSQL catalog (a fresh "
            'schema on 127.0.0.1:5432) and one moto bucket, all started once; "N nodes" means the parts '
            "went to the first N of them (the others idle). Everything, client and moto included, shares "
            "the machine's two cores, which one node's part conversions (one per core) already keep busy: "
            "more nodes cannot add CPU here, so the ratio shows the cost of spreading (more processes, "
            "more catalog and bucket round trips), not the gain nodes on machines of their own would bring.",
        ]
    )
    record_section(HEADING, body)


if __name__ == "__main__":
    main()
