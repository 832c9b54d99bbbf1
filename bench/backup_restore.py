"""Backup and restore of N GB of table data against a plain ``cp -r`` of the same data directory.

    ./dg bench backup_restore [--gb 1] [--runs 2] [--record/--no-record]

Loads generated rows (seeded, so the same bytes every run; their count and sum are checked after
the restore) into one dataset of a real server in several appends, until the data directory
holds about ``--gb`` GB of Parquet. Then, interleaved ``--runs`` times, times ``cp -r`` of the data
directory (the baseline: no consistency, no checksums), ``datagrove backup`` (online, the server
running and idle; SHA-256 of every file) and ``datagrove restore`` into a fresh directory (every
checksum verified first, then the files placed and the metadata rewritten). Finally a server
started on the last restore must answer the same count and sum. Times are of the whole CLI
command, Python start included (~2-4 s on this machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, markdown_table, median, record_section, running_server, text_table, today

SCHEMA = {"columns": [{"type": "LONG", "name": "n"}, {"type": "STRING", "name": "payload"}]}
ROWS_PER_APPEND = 2_000_000  # ~190 MB of CSV, ~150 MB of Parquet (random hex hardly compresses)


def csv_chunk(seed: int, start: int, rows: int) -> bytes:
    generator = random.Random(seed)
    return b"".join(b"%d,%s\n" % (start + i, generator.randbytes(40).hex().encode()) for i in range(rows))


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def cli(data_dir: Path, *args: str) -> tuple[float, float]:
    """(seconds of the whole command, seconds its report gives: the work without Python's start)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAGROVE_")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "datagrove.cli", *args, "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"datagrove {args[0]} failed: {done.stderr}")
    return time.perf_counter() - started, float(json.loads(done.stdout)["seconds"])


def copy_tree(source: Path, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--gb", type=float, default=1.0, help="Parquet to back up, in GB (default 1)")
    parser.add_argument("--runs", type=int, default=2, help="interleaved runs of each (default 2)")
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()
    record = args.record if args.record is not None else args.gb >= 1
    load_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="dg-bench-backup-"))
    try:
        data_dir = work / "data"
        with running_server(data_dir, DATAGROVE_MAINTENANCE_INTERVAL_SECONDS="0") as server:
            with server.client() as client:
                dataset = client.post("/v1/datasets", json={"name": "bulk", "schema": SCHEMA}).json()["id"]
                appends = total = checksum = 0
                while tree_bytes(data_dir / "warehouse") < args.gb * 1e9:
                    body = csv_chunk(appends, total, ROWS_PER_APPEND)
                    answer = client.put(f"/v1/datasets/{dataset}/data?updateMethod=APPEND", content=body)
                    assert answer.status_code == 204, answer.text
                    checksum += sum(range(total, total + ROWS_PER_APPEND))
                    total += ROWS_PER_APPEND
                    appends += 1
                sql = {"sql": "SELECT COUNT(*), SUM(n) FROM table"}
                [[count, summed]] = client.post(f"/v1/datasets/query/execute/{dataset}", json=sql).json()[
                    "rows"
                ]
                assert (count, summed) == (total, checksum), (count, summed)
            size = tree_bytes(data_dir)
            print(f"data directory: {size / 1e9:.2f} GB, {total:,} rows in {appends} appends")
            copies: list[float] = []
            backups: list[tuple[float, float]] = []
            restores: list[tuple[float, float]] = []
            for run in range(args.runs):
                copies.append(copy_tree(data_dir, work / f"copy{run}"))
                shutil.rmtree(work / f"copy{run}")
                backups.append(cli(data_dir, "backup", str(work / f"backup{run}")))
                restored = work / f"restored{run}"
                restores.append(cli(restored, "restore", str(work / f"backup{run}")))
                if run < args.runs - 1:
                    shutil.rmtree(work / f"backup{run}")
                    shutil.rmtree(restored)
                print(
                    f"run {run + 1}: cp -r {copies[-1]:.1f} s, backup {backups[-1][0]:.1f} s (work {backups[-1][1]:.1f}), "
                    f"restore {restores[-1][0]:.1f} s (work {restores[-1][1]:.1f})"
                )
        backup_dir = work / f"backup{args.runs - 1}"
        manifest = json.loads((backup_dir / "manifest.json").read_text())
        backup_size = sum(int(f["size"]) for f in manifest["files"])
        with (
            running_server(restored, DATAGROVE_MAINTENANCE_INTERVAL_SECONDS="0") as server,
            server.client() as client,
        ):
            sql = {"sql": "SELECT COUNT(*), SUM(n) FROM table"}
            answer = client.post(f"/v1/datasets/query/execute/{dataset}", json=sql)
            [[count, summed]] = answer.json()["rows"]
        assert (count, summed) == (total, checksum), "the restored dataset differs"
        fingerprint = hashlib.sha256(json.dumps([total, checksum]).encode()).hexdigest()[:12]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_end = os.getloadavg()[0]

    copy_s = median(copies)
    headers = ["step", "whole command s", "its work s", "work MB/s", "work / cp -r", "command / cp -r"]
    rows = [
        [
            "cp -r of the data directory (baseline)",
            f"{copy_s:.1f}",
            f"{copy_s:.1f}",
            f"{size / 1e6 / copy_s:.0f}",
            "1.00×",
            "1.00×",
        ]
    ]
    for name, times in (
        ("datagrove backup (online)", backups),
        ("datagrove restore (fresh directory)", restores),
    ):
        whole, work_s = median([t[0] for t in times]), median([t[1] for t in times])
        rows.append(
            [
                name,
                f"{whole:.1f}",
                f"{work_s:.1f}",
                f"{backup_size / 1e6 / work_s:.0f}",
                f"{work_s / copy_s:.2f}×",
                f"{whole / copy_s:.2f}×",
            ]
        )
    print(text_table(headers, rows))
    if not record:
        return
    command = f"./dg bench backup_restore --gb {args.gb:g} --runs {args.runs}"
    body = (
        f"Command: `{command}` — {today()}  \n"
        f"Machine: {machine()}; 1-minute load average {load_start:.1f} at the start, {load_end:.1f} at the end "
        "(other helpers' tests and benchmarks were running on the machine: the absolute figures are "
        "inflated, the ratios less so)  \n"
        f"Data: one dataset, {total:,} generated rows (seeded; count and sum checked on the original and on "
        f"the restored server, fingerprint {fingerprint}) in {appends} appends: data directory "
        f"{size / 1e9:.2f} GB, backup {backup_size / 1e9:.2f} GB in {len(manifest['files'])} files  \n"
        f"Medians of {args.runs} interleaved runs. *Whole command*: the CLI process from start to exit "
        "(Python's start and imports included); *its work*: the seconds its own report gives.\n\n"
        + markdown_table(headers, rows)
        + "\n\nThe backup reads every file once (hashing it as it copies); the restore reads the backup "
        "twice (every checksum verified before anything is written, then the copy) and rewrites the "
        "Iceberg metadata. `cp -r` checks nothing and is not consistent while the server writes."
    )
    record_section("Backup and restore against cp -r (issue 14)", body)


if __name__ == "__main__":
    main()
