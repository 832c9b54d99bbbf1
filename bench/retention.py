"""Disk use of a dataset replaced every hour, 100 times, with table maintenance against without.

Time is simulated: REPLACEs run back to back, and REPLACE number ``h`` stands for hour ``h``. After
each, every maintained dataset gets one maintenance round (expiry, then the orphan sweep) as the
background loop runs it, with its retention and grace period moved onto the simulated hours: "keep
7 days" keeps the snapshots made since REPLACE ``h - 168`` started, "6 hours of grace" deletes the
files expired before REPLACE ``h - 6`` started. Datasets, all in one run on one catalog:

* **none**: no maintenance (the baseline: what Datagrove did before; every copy stays);
* **7 days** (the default retention: keep >= 10 snapshots and >= 7 days; 6 hours' grace);
* **1 day**, **0 days**: the same with ``retention_days`` 1 and 0 (then only the 10 snapshots).

After the last round the benchmark counts every byte under each table's directory (data and
metadata) and divides by the size of one copy (the current snapshot's data files), and it checks
that each dataset answers the last generation's row count and id sum.

With ``--storage s3`` the tables live in a bucket of moto's S3 server (on loopback) instead of the
data directory, maintained by the same code, and the figures are the bucket's bytes (every object
under each table's prefix; the whole bucket is checked to hold nothing else).

Run: ``./dg bench retention [--replaces 100] [--rows 200000] [--storage local|s3]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, markdown_table, record_section, text_table, today  # noqa: E402

from datagrove.app import build_services, maintenance_settings  # noqa: E402
from datagrove.catalog.maintenance import MaintenanceCatalog  # noqa: E402
from datagrove.catalog.streams import StreamCatalog  # noqa: E402
from datagrove.domain import Actor, Role, UpdateMethod  # noqa: E402
from datagrove.services.maintenance import MaintenanceService  # noqa: E402
from datagrove.settings import Settings  # noqa: E402
from datagrove.tables import maintenance as tm  # noqa: E402
from datagrove.tables.types import Column, ColumnType  # noqa: E402

COLUMNS = [Column("id", ColumnType.LONG), Column("name", ColumnType.STRING), Column("x", ColumnType.DOUBLE)]
HOUR = 3600.0
SCENARIOS = {"none": None, "default": 7.0, "1 day": 1.0, "0 days": 0.0}  # retention_days


def generation(path: Path, g: int, rows: int) -> int:
    """One copy of the data (generation ``g``); returns the sum of its ids."""
    start = g * 10_000_000
    path.write_text(
        "".join(f"{start + i},name-{g}-{i % 977},{(i * 7919) % 100003 / 7}\n" for i in range(rows))
    )
    return sum(range(start, start + rows))


@contextlib.contextmanager
def storage_settings(kind: str, directory: Path) -> Iterator[dict[str, object]]:
    """The settings that put the tables in the data directory (none) or in a fresh moto bucket."""
    if kind == "local":
        yield {}
        return
    from tests.support.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, moto_server

    with moto_server(directory / "moto") as moto:
        yield {
            "storage_url": f"s3://{moto.new_bucket()}/datagrove",
            "s3_endpoint": moto.endpoint,
            "s3_region": REGION,
            "s3_access_key_id": ACCESS_KEY_ID,
            "s3_secret_access_key": SECRET_ACCESS_KEY,
            "s3_path_style": True,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--replaces", type=int, default=100)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--storage", choices=["local", "s3"], default="local", help="s3: a moto bucket")
    parser.add_argument("--no-record", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as directory,
        storage_settings(args.storage, Path(directory)) as where,
    ):
        data_dir = Path(directory)
        services = build_services(
            Settings(data_dir=data_dir, maintenance_interval_seconds=0, **where)  # type: ignore[arg-type]
        )
        storage = services.store.storage
        user = services.catalog.create_user(name="bench", email="bench@example.com", role=Role.ADMIN)
        actor = Actor(user=user, scopes=None, credential="bench")
        engine = services.catalog.engine
        defaults = maintenance_settings(services.settings)
        datasets = {
            name: services.datasets.create(actor=actor, name=name, description="", columns=COLUMNS).id
            for name in SCENARIOS
        }
        started: list[float] = []  # when each simulated hour (REPLACE) began, in real seconds

        def since(hours: float) -> float:
            """Real seconds from the start of the REPLACE ``hours`` ago to now (all of them: more)."""
            back = len(started) - 1 - int(hours)
            return time.time() - started[back] if back >= 0 else 10 * 365 * 86400.0

        def maintainer(days: float) -> MaintenanceService:
            # Retention and grace moved onto the simulated hours (bypassing the floors that protect
            # real reads: the benchmark runs none while it maintains).
            settings = replace(
                defaults,
                keep_days=since(days * 24) / 86400,
                grace_seconds=since(defaults.grace_seconds / HOUR),
            )
            return MaintenanceService(
                maintenance=MaintenanceCatalog(engine),
                catalog=services.catalog,
                streams=StreamCatalog(engine),
                datasets=services.datasets,
                store=services.store,
                settings=settings,
            )

        clock = time.monotonic()
        ids = 0
        for g in range(args.replaces):
            started.append(time.time())
            csv = data_dir / f"g{g}.csv"
            ids = generation(csv, g, args.rows)
            for name, dataset_id in datasets.items():
                copy = data_dir / f"g{g}-{uuid.uuid4().hex}.csv"
                copy.write_bytes(csv.read_bytes())
                services.datasets.import_csv(
                    actor=actor, dataset_id=dataset_id, csv_path=copy, method=UpdateMethod.REPLACE
                )
                days = SCENARIOS[name]
                if days is not None:
                    maintainer(days).expire(dataset_id=dataset_id)
                    maintainer(days).sweep(dataset_id=dataset_id)
            csv.unlink()
        wall = time.monotonic() - clock

        results = []
        for name, dataset_id in datasets.items():
            answer = services.query.execute(
                actor=actor, dataset_id=dataset_id, sql="SELECT COUNT(*) AS n, SUM(id) AS s FROM table"
            )
            [row] = json.loads("[" + b"".join(answer).decode() + "]")
            assert (row["n"], row["s"]) == (args.rows, ids), (name, row)
            one_copy = sum(storage.size(p) or 0 for p in services.store.current_files(dataset_id))
            stored = tm.list_files(storage, tm.table_root(services.store, dataset_id))
            total = sum(f.size for f in stored)
            data = sum(f.size for f in stored if f.uri.endswith(".parquet"))
            snapshots = len(services.store.load_table(dataset_id).metadata.snapshots)
            results.append((name, one_copy, data, total, snapshots))
        if not storage.is_local:  # the tables' prefixes are all the bucket holds (no staging left)
            tables = sum(r[3] for r in results)
            assert sum(f.size for f in tm.list_files(storage, storage.root)) == tables

    headers = [
        "maintenance",
        "data files",
        "data ÷ one copy",
        "all files (data + metadata)",
        "all ÷ one copy",
        "snapshots kept",
    ]
    rows = [
        (
            name
            if name == "none"
            else ("retention 7 days (default)" if name == "default" else f"retention {name}"),
            f"{data / 1e6:.1f} MB",
            f"{data / one_copy:.1f}×",
            f"{total / 1e6:.1f} MB",
            f"{total / one_copy:.1f}×",
            snapshots,
        )
        for name, one_copy, data, total, snapshots in results
    ]
    one = results[0][1]
    print(text_table(headers, rows))
    print(f"one copy: {one / 1e6:.2f} MB ({args.rows:,} rows); {args.replaces} REPLACEs in {wall:.0f} s")
    if args.no_record:
        return
    command = f"./dg bench retention --replaces {args.replaces} --rows {args.rows}"
    if args.storage == "s3":
        command += " --storage s3"
    body = f"""`{command}` — {today()}, {machine()}.

{args.replaces} REPLACEs of a {args.rows:,}-row dataset (3 columns; one copy = {one / 1e6:.2f} MB of Parquet),
one per simulated hour, each followed by a maintenance round (expiry, orphan sweep) as the background loop
runs it, with the retention and the 6-hour grace period moved onto the simulated hours (REPLACE number h
is hour h). Every dataset answered the last generation's row count and id sum afterwards. Disk use counts
every file under the table's directory after the last round; "none" is the same dataset without
maintenance, in the same run.

{markdown_table(headers, rows)}

With the default retention (a week) nothing is old enough to expire after 100 hours, so the disk holds
every copy, as without maintenance; it stops growing at about 7 × 24 + 6 (grace) copies. A dataset
replaced hourly that should stay near one copy wants `DATAGROVE_RETENTION_DAYS` of 1 or 0 (then the 10
newest snapshots — 5 REPLACEs, each a delete and an add — plus the grace period's worth).
"""
    if args.storage == "s3":
        body += f"""
On S3 (a moto bucket on loopback; the same maintenance code lists, ages and deletes the objects) the
figures are the bucket's bytes: every object under each table's prefix, which after the last round is
all the bucket holds. The REPLACEs and rounds took {wall:.0f} s in all.
"""
        record_section("Retention on S3: bucket bytes after hourly REPLACEs", body)
        return
    record_section("Retention: disk use after hourly REPLACEs", body)


if __name__ == "__main__":
    main()
