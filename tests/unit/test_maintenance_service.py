"""Table maintenance as a specification: expiry leaves only the kept snapshots' files, never under a
running read; compaction changes no row; the orphan sweep never takes an in-flight commit's files;
``check`` finds a missing file, a file of the wrong size and an orphan. Real catalogs (SQLite and
PostgreSQL) through ``build_services``, and the same tests with the tables in an S3 bucket (moto);
the maintenance clock is moved instead of waiting days (an object's age is its Last-Modified)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from datagrove.app import Services, build_services, maintenance_settings
from datagrove.catalog.maintenance import MaintenanceCatalog
from datagrove.catalog.repository import utcnow
from datagrove.catalog.streams import StreamCatalog
from datagrove.domain import Actor, Role, UpdateMethod
from datagrove.errors import Conflict
from datagrove.services.maintenance import MaintenanceService
from datagrove.settings import Settings
from datagrove.tables import maintenance as tm
from datagrove.tables.storage import StoredObject
from datagrove.tables.types import Column, ColumnType
from tests.support.postgres import private_schema
from tests.support.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer

COLUMNS = [Column("id", ColumnType.LONG), Column("name", ColumnType.STRING), Column("x", ColumnType.DOUBLE)]
DAY = timedelta(days=1)


class Clock:
    """The time maintenance takes as now: the real one, moved on by ``advance``."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by


@pytest.fixture(params=["sqlite", "postgres", "s3"])
def services(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    for name in list(os.environ):
        if name.startswith("DATAGROVE_"):
            monkeypatch.delenv(name)
    if request.param == "sqlite":
        yield build_services(Settings(data_dir=tmp_path))
        return
    if request.param == "s3":
        moto: MotoServer = request.getfixturevalue("moto")
        settings = Settings(
            data_dir=tmp_path,
            storage_url=f"s3://{moto.new_bucket()}/datagrove",
            s3_endpoint=moto.endpoint,
            s3_region=REGION,
            s3_access_key_id=ACCESS_KEY_ID,
            s3_secret_access_key=SECRET_ACCESS_KEY,  # type: ignore[arg-type]
            s3_path_style=True,
        )
        yield build_services(settings)
        return
    with private_schema() as url:
        built = build_services(Settings(data_dir=tmp_path, catalog_url=url))
        yield built
        built.catalog.engine.dispose()


def maintenance(services: Services, clock: Clock, **changes: object) -> MaintenanceService:
    """The service as ``build_services`` makes it, on the test's clock (and settings ``changes``)."""
    engine = services.catalog.engine
    return MaintenanceService(
        maintenance=MaintenanceCatalog(engine),
        catalog=services.catalog,
        streams=StreamCatalog(engine),
        datasets=services.datasets,
        store=services.store,
        settings=replace(maintenance_settings(services.settings), **changes),  # type: ignore[arg-type]
        clock=clock,
    )


def admin(services: Services) -> Actor:
    name = "a-" + uuid.uuid4().hex[:8]
    user = services.catalog.create_user(name=name, email=f"{name}@example.com", role=Role.ADMIN)
    return Actor(user=user, scopes=None, credential="test")


def load(
    services: Services,
    actor: Actor,
    dataset_id: str,
    rows: list[tuple[int, str, float]],
    tmp: Path,
    *,
    method=UpdateMethod.REPLACE,
) -> None:
    csv = tmp / f"{uuid.uuid4().hex}.csv"
    csv.write_text("".join(f"{i},{n},{x}\n" for i, n, x in rows))
    services.datasets.import_csv(actor=actor, dataset_id=dataset_id, csv_path=csv, method=method)


def generation(g: int, n: int = 5) -> list[tuple[int, str, float]]:
    return [(g * 1000 + i, f"g{g}-{i}", g + i / 10) for i in range(n)]


def rows_of(
    services: Services, actor: Actor, dataset_id: str, sql: str = "SELECT * FROM table"
) -> list[dict[str, object]]:
    answer = services.query.execute(actor=actor, dataset_id=dataset_id, sql=sql)
    return json.loads("[" + b"".join(answer).decode() + "]")


def stored_files(services: Services, dataset_id: str) -> list[StoredObject]:
    """Every file under the table's location: in the data directory, or in the bucket."""
    return tm.list_files(services.store.storage, tm.table_root(services.store, dataset_id))


def data_files_on_disk(services: Services, dataset_id: str) -> set[str]:
    return {f.uri for f in stored_files(services, dataset_id) if f.uri.endswith(".parquet")}


def place(services: Services, dataset_id: str, name: str, content: bytes, tmp: Path) -> str:
    """Put a file of ``content`` in the table's data location (as a crashed writer would leave it);
    returns its URI as maintenance spells it."""
    source = tmp / uuid.uuid4().hex
    source.write_bytes(content)
    uri = f"{tm.table_root(services.store, dataset_id).rstrip('/')}/data/{name}"
    services.store.storage.put(source, uri)
    return tm.normal_uri(services.store.storage, uri)


def files_of_live_snapshots(services: Services, dataset_id: str) -> set[str]:
    return {uri for uri in tm.referenced_files(services.store, dataset_id) if uri.endswith(".parquet")}


def test_after_50_replaces_and_expiry_only_the_kept_snapshots_files_remain(
    services: Services, tmp_path: Path
):
    actor = admin(services)
    dataset = services.datasets.create(actor=actor, name="hourly", description="", columns=COLUMNS)
    for g in range(50):
        load(services, actor, dataset.id, generation(g), tmp_path)
    assert len(data_files_on_disk(services, dataset.id)) == 50
    clock = Clock()
    service = maintenance(services, clock)

    clock.advance(8 * DAY)  # every snapshot is past the week; the newest 10 stay
    [first] = service.expire(dataset_id=dataset.id)
    assert first.expired_snapshots > 0 and first.kept_snapshots == 10 and first.files_deleted == 0
    assert len(data_files_on_disk(services, dataset.id)) == 50  # waiting out the grace period

    clock.advance(timedelta(seconds=services.settings.resolved_maintenance_grace_seconds + 1))
    [second] = service.expire(dataset_id=dataset.id)
    assert second.files_deleted >= 45
    on_disk = data_files_on_disk(services, dataset.id)
    assert on_disk == files_of_live_snapshots(services, dataset.id)
    assert len(on_disk) == 5  # a REPLACE is two snapshots (delete, then add): 10 snapshots = 5 files
    assert sorted(r["id"] for r in rows_of(services, actor, dataset.id)) == [r[0] for r in generation(49)]
    assert service.check(dataset_id=dataset.id).ok

    # The metadata file the expiry's own commit superseded goes one grace period later: then the
    # storage (the whole bucket, for S3) holds exactly what the current metadata references.
    clock.advance(timedelta(seconds=services.settings.resolved_maintenance_grace_seconds + 1))
    assert service.expire(dataset_id=dataset.id)[0].files_deleted >= 1
    everything = tm.list_files(services.store.storage, services.store.storage.root)
    live = tm.referenced_files(services.store, dataset.id)
    assert {f.uri for f in everything if f.uri.startswith(tm.table_root(services.store, dataset.id))} == set(
        live
    )
    if not services.store.storage.is_local:
        assert {f.uri for f in everything} == set(live)
    assert service.check(dataset_id=dataset.id).ok


# Retention and round claiming are decisions on metadata and catalog alone: local storage suffices.
local_only = pytest.mark.parametrize("services", ["sqlite", "postgres"], indirect=True)


@local_only
def test_nothing_younger_than_the_retention_or_among_the_newest_snapshots_expires(
    services: Services, tmp_path: Path
):
    actor = admin(services)
    dataset = services.datasets.create(actor=actor, name="young", description="", columns=COLUMNS)
    for g in range(12):
        load(services, actor, dataset.id, generation(g), tmp_path)
    clock = Clock()
    assert maintenance(services, clock).expire(dataset_id=dataset.id)[0].expired_snapshots == 0  # a week
    clock.advance(8 * DAY)
    report = maintenance(services, clock, keep_snapshots=30).expire(dataset_id=dataset.id, dry_run=True)[0]
    # All 23 (the first REPLACE, on an empty table, is one snapshot): 30 newest are kept.
    assert report.expired_snapshots == 0 and report.kept_snapshots == 23


def test_a_query_that_resolved_its_snapshot_before_an_expiry_reads_its_rows(
    services: Services, tmp_path: Path
):
    actor = admin(services)
    dataset = services.datasets.create(actor=actor, name="busy", description="", columns=COLUMNS)
    load(services, actor, dataset.id, generation(1, n=2000), tmp_path)
    running = services.query.execute(
        actor=actor, dataset_id=dataset.id, sql="SELECT id FROM table ORDER BY id"
    )
    for g in range(2, 14):  # the query's snapshot is now far behind, and old
        load(services, actor, dataset.id, generation(g), tmp_path)
    clock = Clock()
    service = maintenance(services, clock)
    clock.advance(8 * DAY)
    assert service.expire(dataset_id=dataset.id)[0].expired_snapshots > 0
    clock.advance(timedelta(seconds=services.settings.resolved_maintenance_grace_seconds - 60))
    assert service.expire(dataset_id=dataset.id)[0].files_deleted == 0  # still inside the grace period

    answer = json.loads("[" + b"".join(running).decode() + "]")
    assert [r["id"] for r in answer] == [r[0] for r in generation(1, n=2000)]

    clock.advance(timedelta(seconds=120))
    assert service.expire(dataset_id=dataset.id)[0].files_deleted > 0
    assert data_files_on_disk(services, dataset.id) == files_of_live_snapshots(services, dataset.id)


def checksums(services: Services, actor: Actor, dataset_id: str) -> dict[str, object]:
    [row] = rows_of(
        services,
        actor,
        dataset_id,
        "SELECT COUNT(*) AS n, SUM(id) AS s_id, ROUND(SUM(x), 6) AS s_x, SUM(LENGTH(name)) AS s_name, "
        "MIN(name) AS lo, MAX(name) AS hi FROM table",
    )
    return row


def test_compaction_keeps_every_row_and_checksum_in_fewer_files(services: Services, tmp_path: Path):
    actor = admin(services)
    dataset = services.datasets.create(actor=actor, name="appended", description="", columns=COLUMNS)
    for g in range(25):
        load(services, actor, dataset.id, generation(g, n=40), tmp_path, method=UpdateMethod.APPEND)
    before_rows = rows_of(services, actor, dataset.id)
    before = checksums(services, actor, dataset.id)
    watermark = services.store.table_state(dataset.id).appended_through
    clock = Clock()
    service = maintenance(services, clock)
    assert len(services.store.current_files(dataset.id)) == 25

    assert service.compact(dataset_id=dataset.id, dry_run=True)[0].small_files == 25
    assert len(services.store.current_files(dataset.id)) == 25
    [report] = service.compact(dataset_id=dataset.id)
    assert report.small_files == 25 and report.files_written == 1
    assert len(services.store.current_files(dataset.id)) == 1
    # Written in the store's layout (DATAGROVE_PARQUET_CODEC): compaction moves old files to it.
    [compacted] = services.store.current_files(dataset.id)
    codec = services.store.parquet_layout.arrow_compression.upper()
    with services.store.storage.open(compacted) as compacted_file:
        metadata = pq.ParquetFile(compacted_file).metadata
    assert {metadata.row_group(0).column(i).compression for i in range(metadata.num_columns)} == {codec}
    assert checksums(services, actor, dataset.id) == before
    assert rows_of(services, actor, dataset.id) == before_rows  # even the order
    assert services.store.table_state(dataset.id) == services.store.table_state(dataset.id)
    assert services.store.table_state(dataset.id).appended_through == watermark
    assert service.compact(dataset_id=dataset.id)[0].small_files == 0  # nothing left to do
    assert service.check(dataset_id=dataset.id).ok


def test_compaction_leaves_a_table_with_few_small_files_alone(services: Services, tmp_path: Path):
    actor = admin(services)
    dataset = services.datasets.create(actor=actor, name="few", description="", columns=COLUMNS)
    for g in range(3):
        load(services, actor, dataset.id, generation(g), tmp_path, method=UpdateMethod.APPEND)
    [report] = maintenance(services, Clock()).compact(dataset_id=dataset.id)
    assert (report.files_before, report.files_written) == (3, 0)


def test_the_sweep_takes_only_unreferenced_files_older_than_the_safety_age(
    services: Services, tmp_path: Path
):
    actor = admin(services)
    dataset = services.datasets.create(actor=actor, name="crashy", description="", columns=COLUMNS)
    load(services, actor, dataset.id, generation(1), tmp_path)
    storage = services.store.storage
    orphan = place(
        services, dataset.id, f"{time.time_ns():020d}-deadbeef-000000.parquet", b"PAR1 x", tmp_path
    )
    clock = Clock()
    service = maintenance(services, clock)
    assert service.sweep(dataset_id=dataset.id)[0].orphans == ()
    assert storage.exists(orphan)
    clock.advance(timedelta(seconds=services.settings.resolved_orphan_min_age_seconds + 1))
    # Besides ours: the metadata files of the table's first commits, which no read loads any more.
    assert orphan in service.sweep(dataset_id=dataset.id, dry_run=True)[0].orphans
    assert storage.exists(orphan)
    assert orphan in service.sweep(dataset_id=dataset.id)[0].orphans
    assert not storage.exists(orphan)
    assert service.check(dataset_id=dataset.id).ok
    assert len(rows_of(services, actor, dataset.id)) == 5


def test_check_passes_on_a_healthy_table_and_reports_a_missing_file_and_an_orphan(
    services: Services, tmp_path: Path
):
    actor = admin(services)
    dataset = services.datasets.create(actor=actor, name="checked", description="", columns=COLUMNS)
    for g in range(3):
        load(services, actor, dataset.id, generation(g), tmp_path, method=UpdateMethod.APPEND)
    storage = services.store.storage
    clock = Clock()
    service = maintenance(services, clock)
    healthy = service.check(dataset_id=dataset.id)
    assert healthy.ok and healthy.files > 3, healthy

    first, second, _ = services.store.current_files(dataset.id)
    storage.delete(first)
    resized = tmp_path / "resized"
    resized.write_bytes(b"PAR1 not the file the metadata describes")
    storage.put(resized, second)
    orphan = place(services, dataset.id, "0-orphan-000000.parquet", b"x", tmp_path)
    young = service.check(dataset_id=dataset.id)
    assert orphan in young.recent and not young.orphans  # it may be a commit's in flight
    clock.advance(timedelta(seconds=services.settings.commit_claim_seconds + 61))
    found = service.check(dataset_id=dataset.id)
    assert not found.ok
    name = first.rsplit("/", 1)[-1]
    assert [p for p in found.problems if "missing file" in p and name in p]
    name = second.rsplit("/", 1)[-1]
    assert [p for p in found.problems if name in p and "bytes, the metadata records" in p]
    assert [o for o in found.orphans if orphan in o]


@local_only
def test_the_background_round_is_done_by_one_node_per_interval(services: Services, tmp_path: Path):
    actor = admin(services)
    dataset = services.datasets.create(actor=actor, name="shared", description="", columns=COLUMNS)
    load(services, actor, dataset.id, generation(1), tmp_path)
    clock = Clock()
    one, other = maintenance(services, clock), maintenance(services, clock)
    assert one.run_due() >= 1
    assert other.run_due() == 0  # the same interval: already done
    clock.advance(timedelta(seconds=services.settings.maintenance_interval_seconds + 1))
    assert other.run_due() >= 1


def test_the_grace_period_outlasts_the_longest_read_and_the_safety_age_outlasts_both():
    short = Settings(maintenance_grace_seconds=1, orphan_min_age_seconds=1, connector_sql_timeout_seconds=10)
    assert short.resolved_maintenance_grace_seconds == 60 + 300  # the HTTP query limit is the longest
    assert short.resolved_orphan_min_age_seconds == max(60 + 300, short.commit_claim_seconds + 300)
    assert Settings().resolved_maintenance_grace_seconds == 6 * 3600
    assert Settings().resolved_orphan_min_age_seconds == 24 * 3600


def test_a_compaction_overtaken_by_a_commit_changes_nothing_and_leaves_no_file(
    services: Services, tmp_path: Path
):
    actor = admin(services)
    dataset = services.datasets.create(actor=actor, name="raced", description="", columns=COLUMNS)
    for g in range(12):
        load(services, actor, dataset.id, generation(g), tmp_path, method=UpdateMethod.APPEND)
    plan = tm.plan_compaction(services.store, dataset.id, target_bytes=128 * 1024**2, min_small_files=10)
    assert plan.small_files == 12
    load(services, actor, dataset.id, generation(99), tmp_path, method=UpdateMethod.APPEND)  # lands first
    before = data_files_on_disk(services, dataset.id)
    with pytest.raises(Conflict), services.store.staging_area() as staging:
        tm.compact(services.store, dataset.id, plan, COLUMNS, staging=staging)
    assert data_files_on_disk(services, dataset.id) == before
    assert len(services.store.current_files(dataset.id)) == 13
    assert len(rows_of(services, actor, dataset.id)) == 65
