"""Backup and restore in this process, on real catalogs and storage: a restore checks every file
against the manifest before it writes anything (a damaged, missing or unlisted file is refused and
the target stays empty); a backup of tables in an S3 bucket restores into a data directory with
every location moved; and maintenance deletes nothing while a backup holds its lease."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from datagrove.app import Services, build_services
from datagrove.catalog.backup import BackupLease, backup_running
from datagrove.errors import BackupRefused
from datagrove.settings import Settings
from datagrove.storage_setup import backup_service
from datagrove.tables import maintenance as tm
from tests.support.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer
from tests.unit import test_maintenance_service
from tests.unit.test_maintenance_service import (
    COLUMNS,
    DAY,
    Clock,
    admin,
    generation,
    load,
    maintenance,
    place,
    rows_of,
)

services = test_maintenance_service.services  # the fixture: built by build_services, per catalog

sqlite_only = pytest.mark.parametrize("services", ["sqlite"], indirect=True)


def backed_up(
    services: Services, tmp_path: Path, *, include_secret_key: bool = False
) -> tuple[Path, str, list[dict[str, object]]]:
    """A backup of one dataset of two versions: (its directory, the dataset id, its rows)."""
    actor = admin(services)
    dataset = services.datasets.create(actor=actor, name="kept", description="", columns=COLUMNS)
    load(services, actor, dataset.id, generation(1), tmp_path)
    load(services, actor, dataset.id, generation(2, 7), tmp_path)
    destination = tmp_path / "backup"
    report = backup_service(services.settings).backup(
        destination=destination, include_secret_key=include_secret_key
    )
    assert report.tables == 1 and report.files >= 6  # catalog, metadata, 2 lists, manifests, data
    return destination, dataset.id, rows_of(services, actor, dataset.id)


def fresh_target(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "target")


def target_is_untouched(settings: Settings) -> bool:
    holds = [p for p in settings.data_dir.rglob("*") if p.is_file()] if settings.data_dir.exists() else []
    return holds == []


@sqlite_only
def test_a_damaged_file_is_refused_before_anything_is_written(services: Services, tmp_path: Path):
    backup, _dataset, _rows = backed_up(services, tmp_path)
    manifest = json.loads((backup / "manifest.json").read_text())
    data = next(f["path"] for f in manifest["files"] if f["path"].endswith(".parquet"))
    target = fresh_target(tmp_path)
    damaged = bytearray((backup / data).read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size, one byte flipped
    (backup / data).write_bytes(bytes(damaged))

    with pytest.raises(BackupRefused, match="is damaged") as refused:
        backup_service(target).restore(source=backup)
    assert data in refused.value.message
    assert target_is_untouched(target)


@sqlite_only
def test_a_missing_or_unlisted_file_or_no_manifest_is_refused(services: Services, tmp_path: Path):
    backup, _dataset, _rows = backed_up(services, tmp_path)
    target = fresh_target(tmp_path)
    stray = backup / "files" / "stray.parquet"
    stray.write_bytes(b"PAR1")
    with pytest.raises(BackupRefused, match="does not list"):
        backup_service(target).restore(source=backup)
    stray.unlink()
    manifest = json.loads((backup / "manifest.json").read_text())
    gone = next(f["path"] for f in manifest["files"] if f["path"].endswith(".avro"))
    (backup / gone).unlink()
    with pytest.raises(BackupRefused, match="lacks"):
        backup_service(target).restore(source=backup)
    (backup / "manifest.json").unlink()
    with pytest.raises(BackupRefused, match="not a \\(complete\\) backup"):
        backup_service(target).restore(source=backup)
    assert target_is_untouched(target)


@pytest.mark.parametrize(
    ("services", "into"),
    [("sqlite", "directory"), ("sqlite", "bucket"), ("s3", "directory"), ("s3", "bucket")],
    indirect=["services"],
)
def test_a_restored_data_directory_answers_as_the_original(
    services: Services, into: str, tmp_path: Path, request: pytest.FixtureRequest
):
    backup, dataset_id, rows = backed_up(services, tmp_path, include_secret_key=True)
    before = services.versions.list_versions(actor=admin(services), dataset_id=dataset_id, limit=10, offset=0)
    target = fresh_target(tmp_path)
    if into == "bucket":  # a bucket: another of the same store, or the first for a local warehouse
        moto: MotoServer = request.getfixturevalue("moto")
        target = services.settings.model_copy(
            update={
                "data_dir": target.data_dir,
                "storage_url": f"s3://{moto.new_bucket()}/restored",
                "s3_endpoint": moto.endpoint,
                "s3_region": REGION,
                "s3_access_key_id": ACCESS_KEY_ID,
                "s3_secret_access_key": SecretStr(SECRET_ACCESS_KEY),
                "s3_path_style": True,
            }
        )
    backup_service(target).restore(source=backup)
    key = (target.data_dir / "secret.key").read_bytes()
    assert key == (services.settings.data_dir / "secret.key").read_bytes()
    assert (target.data_dir / "secret.key").stat().st_mode & 0o777 == 0o600
    restored = build_services(target)
    actor = admin(restored)
    assert rows_of(restored, actor, dataset_id) == rows
    location = restored.store.load_table(dataset_id).location()
    expected_root = f"{target.storage_url}/warehouse" if target.storage_url else target.warehouse_dir.as_uri()
    assert location.startswith(expected_root + "/")
    assert restored.maintenance.check().ok
    versions = restored.versions.list_versions(actor=actor, dataset_id=dataset_id, limit=10, offset=0)
    assert [v.snapshot_id for v in versions] == [v.snapshot_id for v in before]
    load(restored, actor, dataset_id, generation(3), tmp_path)  # changed after the restore
    backup_service(target).restore(source=backup, force=True)  # replaced by the backup again
    again = build_services(target)
    assert rows_of(again, admin(again), dataset_id) == rows


@sqlite_only
def test_maintenance_deletes_nothing_while_a_backup_holds_its_lease(services: Services, tmp_path: Path):
    actor = admin(services)
    dataset = services.datasets.create(actor=actor, name="busy", description="", columns=COLUMNS)
    for g in range(14):
        load(services, actor, dataset.id, generation(g), tmp_path)
    orphan = place(services, dataset.id, f"{time.time_ns():020d}-dead-000000.parquet", b"PAR1 x", tmp_path)
    clock = Clock()
    service = maintenance(services, clock)
    clock.advance(8 * DAY)
    service.expire(dataset_id=dataset.id)  # records the files of the snapshots it expires
    clock.advance(timedelta(seconds=services.settings.resolved_maintenance_grace_seconds + 1))
    url = services.settings.resolved_catalog_url
    engine = services.catalog.engine

    lease = BackupLease(url, seconds=60)
    lease.take()
    assert backup_running(engine)
    [expiry] = service.expire(dataset_id=dataset.id)
    [sweep] = service.sweep(dataset_id=dataset.id)
    assert expiry.files_deleted == 0 and expiry.held_for_backup > 0
    assert sweep.orphans == () and sweep.held_for_backup >= 1
    assert services.store.storage.exists(orphan)

    lease.release()
    assert not backup_running(engine)
    [expiry] = service.expire(dataset_id=dataset.id)
    [sweep] = service.sweep(dataset_id=dataset.id)
    assert expiry.files_deleted > 0 and orphan in sweep.orphans
    assert not services.store.storage.exists(orphan)
    assert service.check(dataset_id=dataset.id).ok

    # A backup that died: its lease runs out and holds nothing back (and is cleared away).
    dead = BackupLease(url, seconds=0.01)
    dead.take()
    time.sleep(0.05)
    assert not backup_running(engine)
    assert tm.referenced_files(services.store, dataset.id)


@pytest.mark.parametrize("services", ["postgres"], indirect=True)
def test_a_postgresql_backup_without_pg_dump_says_so_and_leaves_no_lease(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    with pytest.raises(BackupRefused, match="pg_dump is not installed"):
        backup_service(services.settings).backup(destination=tmp_path / "backup")
    assert not backup_running(services.catalog.engine)
    assert not (tmp_path / "backup" / "manifest.json").exists()


@pytest.mark.parametrize("services", ["sqlite", "s3"], indirect=True)
def test_a_dataset_deleted_while_a_backup_runs_keeps_its_files_until_the_backup_ends(
    services: Services, tmp_path: Path
):
    """The backup may have copied the catalog while the table was in it, and copies its files
    afterwards: they must still be there. Once no backup runs, maintenance deletes them."""
    actor = admin(services)
    doomed = services.datasets.create(actor=actor, name="doomed", description="", columns=COLUMNS)
    load(services, actor, doomed.id, generation(1), tmp_path)
    files = list(tm.referenced_files(services.store, doomed.id))
    assert files
    storage = services.store.storage
    service = maintenance(services, Clock())

    lease = BackupLease(services.settings.resolved_catalog_url, seconds=60)
    lease.take()
    try:
        services.datasets.delete(actor=actor, dataset_id=doomed.id)
        service.run_due()
        assert all(storage.exists(f) for f in files)
    finally:
        lease.release()

    service.run_due()
    assert not any(storage.exists(f) for f in files)
    assert service.delete_dropped_tables() == 0  # nothing left waiting

    # With no backup running a deletion takes the files at once.
    gone = services.datasets.create(actor=actor, name="gone", description="", columns=COLUMNS)
    load(services, actor, gone.id, generation(2), tmp_path)
    files = list(tm.referenced_files(services.store, gone.id))
    services.datasets.delete(actor=actor, dataset_id=gone.id)
    assert not any(storage.exists(f) for f in files)
