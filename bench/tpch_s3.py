"""TPC-H Q1 over HTTP with the tables in S3 (moto on loopback) against the local data directory.

One CSV (``lineitem``, verified checksum) is imported into two servers that differ only in
``DATAGROVE_STORAGE_URL``: one keeps its files in its data directory (the default), the other in a
moto bucket. Q1 is then timed over HTTP on each:

* local: the files are read in place (the baseline);
* S3, cold: the file cache is emptied before each run, so every run downloads the table's files
  from the bucket first;
* S3, warm: the files are in the cache (the usual case for a table queried more than once).

The three answers must agree. moto keeps objects in memory, so "cold" measures the cache's
download path on loopback, not a real network; on real S3 add the transfer time of the file size.

    ./dg bench tpch_s3 [--scale 1] [--runs 5] [--record/--no-record]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from common import (
    ROOT,
    machine,
    markdown_table,
    median,
    record_section,
    running_server,
    text_table,
    timed,
    today,
)
from tpch_query import (
    QUERIES,
    check_agree,
    create_dataset,
    http_query,
    import_csv,
    lineitem_csv,
    scale_label,
    verify_checksum,
)

HEADING = "TPC-H Q1 with S3 storage (issue 12)"


def clear_cache(cache: Path) -> None:
    for entry in cache.iterdir():
        entry.unlink()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1 = 6,001,215 rows)")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per variant, after one warm-up")
    parser.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the figures into bench/RESULTS.md (default: only at scale 1 or more)",
    )
    args = parser.parse_args(argv)
    # Imported here: ``common`` (imported above) puts the repository root, which holds tests/, on sys.path.
    from tests.support.s3 import moto_server

    record = args.record if args.record is not None else args.scale >= 1
    arguments = " ".join(sys.argv[1:] if argv is None else argv)
    q1 = QUERIES[0]

    load_average = os.getloadavg()[0]
    csv_path = lineitem_csv(args.scale)
    _, checksum = verify_checksum(csv_path, args.scale)
    print(f"data: {csv_path.relative_to(ROOT)}, {checksum}", flush=True)

    samples: dict[str, list[float]] = {"local": [], "s3 cold": [], "s3 warm": []}
    answers: dict[str, list] = {}
    import_ms: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="dg-bench-s3-") as tmp, moto_server(Path(tmp) / "moto") as moto:
        bucket = moto.new_bucket()
        with (
            running_server(Path(tmp) / "local") as local,
            running_server(Path(tmp) / "s3", **moto.env(bucket)) as s3,
            local.client() as local_client,
            s3.client() as s3_client,
        ):
            name = f"lineitem sf{scale_label(args.scale)}"
            local_id, s3_id = create_dataset(local_client, name), create_dataset(s3_client, name)
            import_ms["local"] = import_csv(local_client, local_id, csv_path)
            import_ms["s3"] = import_csv(s3_client, s3_id, csv_path)
            cache = s3.data_dir / "cache"
            variants = (
                ("local", local_client, local_id),
                ("s3 warm", s3_client, s3_id),
                ("s3 cold", s3_client, s3_id),
            )
            # Interleaved (one run of each per round) so that other work on the machine weighs on
            # every variant alike; a cold run leaves the cache filled for the next round's warm run.
            for variant, client, dataset_id in variants:
                answers[variant] = http_query(client, dataset_id, q1.mysql)  # warm-up
            for _ in range(args.runs):
                for variant, client, dataset_id in variants:
                    if variant == "s3 cold":
                        clear_cache(cache)
                    ms, _ = timed(lambda c=client, d=dataset_id: http_query(c, d, q1.mysql))
                    samples[variant].append(ms)
                    print(f"  {variant}: {ms:,.0f} ms", flush=True)
            cache_mb = sum(p.stat().st_size for p in cache.iterdir()) / 1e6 if cache.exists() else 0.0
            cache_files = len(list(cache.iterdir()))
    check_agree(q1.name, answers, q1.key_columns)  # DOUBLE sums: equal to 1e-6, not bit for bit

    base = median(samples["local"])
    # Per round, the variant's time over the local one of the same round: steadier than the ratio of
    # medians while other work on the machine comes and goes.
    headers = ["Variant", "Q1 median ms", "× local (medians)", "× local (median of rounds)"]
    table = [
        [
            variant,
            f"{median(values):,.0f}",
            f"{median(values) / base:.2f}×",
            f"{median([v / b for v, b in zip(values, samples['local'], strict=True)]):.2f}×",
        ]
        for variant, values in samples.items()
    ]
    print(text_table(headers, table))
    if not record:
        return
    body = "\n".join(
        [
            f"Command: `./dg bench tpch_s3 {arguments}`.strip() — {today()}  ",
            f"Machine: {machine()}, load average {load_average:.1f} at the start  ",
            f"Data: TPC-H lineitem at scale {scale_label(args.scale)}, {checksum}; {args.runs} runs per "
            f"variant after one warm-up, interleaved; table files {cache_mb:,.0f} MB in {cache_files} file(s).",
            "",
            markdown_table(headers, table),
            "",
            f"Import (PUT …/data, REPLACE): local {import_ms['local'] / 1000:,.1f} s, "
            f"S3 {import_ms['s3'] / 1000:,.1f} s (the upload of the Parquet file to the bucket included).",
            "",
            "Design: DuckDB has no httpfs here, and user SQL must reach no URL or credential, so a query "
            "over S3 reads local copies of the table's immutable Parquet files from a read-through LRU "
            "cache (`tables/file_cache.py`, `DATAGROVE_FILE_CACHE_BYTES`); the sandbox still gets local "
            "paths only. Local storage reads its files in place, with no cache and no copy. "
            "moto keeps objects in memory on loopback, so the cold figure is the cost of the cache's "
            "download path (ranged HTTP GETs into a file, then rename; moto itself shares the 2 cores), "
            "not of a real network.",
        ]
    ).replace("`.strip()", "`")
    record_section(HEADING, body)


if __name__ == "__main__":
    main()
