"""Stream API ingest with S3 storage (moto on loopback) against the local data directory.

The same TPC-H lineitem CSV, as the same 8 gzip parts, goes through the Stream API (create stream,
execution, 8 parts uploaded 4 at a time, commit, ``COUNT(*)`` answers) into two servers that differ
only in ``DATAGROVE_STORAGE_URL``: one keeps staged parts and table files in its data directory (the
baseline), the other in a moto bucket. Rounds alternate the two, so drift on the shared machine hits
both alike; after each ingest (untimed) the dataset's row count and key sums are checked.

Printed per variant: end to end as MB/s of CSV, the time of each phase (uploading and converting the
parts, the commit), server CPU and peak memory (VmHWM, reset before each ingest); and the ratio
S3/local, the median over rounds of each round's ratio. moto keeps objects in memory and is a Python
process on the same cores as the server, so the S3 figures include moto's own CPU: a lower bound on
what real object storage costs the server, not a network measurement.

    ./dg bench stream_s3 [--scale 1] [--rounds 3] [--record/--no-record]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, markdown_table, record_section, running_server, text_table, today  # noqa: E402
from bench.stream_ingest import PARALLEL, PARTS, Ingest, gzip_parts, ingest, peak_rss_mb, verify_dataset  # noqa: E402
from bench.tpch_query import CHECKSUMS, lineitem_csv, scale_label, verify_checksum  # noqa: E402

HEADING = "Stream API ingest with S3 storage (issue 12)"
VARIANTS = ("local", "s3")


def drop(client: httpx.Client, dataset_id: str) -> None:
    """Delete the dataset after its check, so moto's memory holds one ingest at a time."""
    client.delete(f"/v1/datasets/{dataset_id}").raise_for_status()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1 = 6,001,215 rows)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one ingest per variant")
    parser.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the figures into bench/RESULTS.md (default: only at scale 1 or more)",
    )
    args = parser.parse_args(argv)
    # Imported here: ``bench.common`` (imported above) puts the repository root on sys.path.
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
    ingests: dict[str, list[Ingest]] = {variant: [] for variant in VARIANTS}
    idle_mb: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="dg-bench-stream-s3-") as tmp,
        moto_server(Path(tmp) / "moto") as moto,
        running_server(Path(tmp) / "local") as local,
        running_server(Path(tmp) / "s3", **moto.env(moto.new_bucket())) as s3,
        local.client() as local_client,
        s3.client() as s3_client,
    ):
        servers = {"local": (local, local_client), "s3": (s3, s3_client)}
        for variant, (server, _) in servers.items():
            assert server.process is not None
            idle_mb[variant] = peak_rss_mb(server.process.pid)
        for round_number in range(1, args.rounds + 1):
            for variant, (server, client) in servers.items():
                assert server.process is not None
                done = ingest(client, server.process.pid, parts, rows)
                verify_dataset(client, done.dataset_id, expected)
                drop(client, done.dataset_id)
                ingests[variant].append(done)
                print(
                    f"round {round_number} {variant}: {done.seconds:.2f} s (upload {done.upload_seconds:.2f} s, "
                    f"commit {done.commit_seconds:.2f} s), server CPU {done.server_cpu_seconds:.1f} s, "
                    f"peak {done.server_peak_mb:.0f} MB",
                    flush=True,
                )
    load_after = os.getloadavg()[0]

    ratios = [s.seconds / b.seconds for s, b in zip(ingests["s3"], ingests["local"], strict=True)]

    def med(variant: str, field: str) -> float:
        return statistics.median(getattr(i, field) for i in ingests[variant])

    headers = [
        "storage",
        "end to end s (median)",
        "MB/s of CSV",
        "upload + convert s",
        "commit s",
        "server CPU s",
        "server peak MB (highest)",
    ]
    table = [
        [
            variant,
            f"{med(variant, 'seconds'):.2f} ({', '.join(f'{i.seconds:.2f}' for i in ingests[variant])})",
            f"{csv_mb / med(variant, 'seconds'):.0f}",
            f"{med(variant, 'upload_seconds'):.2f}",
            f"{med(variant, 'commit_seconds'):.2f}",
            f"{med(variant, 'server_cpu_seconds'):.1f}",
            f"{max(i.server_peak_mb for i in ingests[variant]):.0f} (idle {idle_mb[variant]:.0f})",
        ]
        for variant in VARIANTS
    ]
    ratio_line = (
        f"S3 / local, end to end: **{statistics.median(ratios):.2f}×** "
        f"(median of the rounds' ratios: {', '.join(f'{r:.2f}' for r in ratios)}); "
        f"upload phase {med('s3', 'upload_seconds') / med('local', 'upload_seconds'):.2f}×, "
        f"commit {med('s3', 'commit_seconds') / med('local', 'commit_seconds'):.2f}×, server CPU "
        f"{med('s3', 'server_cpu_seconds') / med('local', 'server_cpu_seconds'):.2f}× (medians; CPU "
        "seconds move least with the load of the machine)"
    )
    print(text_table(headers, table))
    print(ratio_line)
    if not record:
        return
    arguments = " ".join(sys.argv[1:] if argv is None else argv)
    body = "\n".join(
        [
            f"Command: `{' '.join(['./dg bench stream_s3', arguments]).strip()}` — {today()}  ",
            f"Machine: {machine()}; 1-minute load average {load_before:.1f} at the start, "
            f"{load_after:.1f} at the end  ",
            f"Data: TPC-H lineitem SF{scale_label(args.scale)}, {csv_mb:.0f} MB CSV, {checksum}; {PARTS} parts "
            f"gzipped before timing ({gz_mb:.0f} MB), uploaded {PARALLEL} at a time; {args.rounds} rounds, the "
            "variants alternating; after each ingest the dataset's row count and key sums are checked.",
            "",
            markdown_table(headers, table),
            "",
            ratio_line + ".",
            "",
            "Both servers: defaults, SQLite catalog; the S3 one keeps staged parts and table files in a moto "
            "bucket on loopback (`tests/support/s3.py`). moto holds objects in memory and runs on the same "
            "two cores as the server and the client, so its own CPU is inside the S3 figures: they bound "
            "the cost of the object-storage path on this machine, not a network. The commit moves each "
            "staged part into the table's prefix (a copy and a delete per object in the bucket, 8 at a "
            "time), where the local commit renames files.",
        ]
    )
    record_section(HEADING, body)


if __name__ == "__main__":
    main()
