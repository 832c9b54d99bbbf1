"""The activity log's retention: entries older than ``audit_retention_days`` are deleted by the
maintenance loop, in batches, by one node per interval (a round claimed in the catalog), and the
deletion is itself an entry; younger entries stay, and 0 keeps everything. Real catalogs (SQLite
and PostgreSQL) through ``build_services``; the maintenance clock is moved instead of waiting."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from datagrove.app import Services, build_services, maintenance_settings
from datagrove.catalog import schema as t
from datagrove.catalog.maintenance import MaintenanceCatalog
from datagrove.catalog.repository import utcnow
from datagrove.catalog.streams import StreamCatalog
from datagrove.services.maintenance import AUDIT_RETENTION, MaintenanceService
from datagrove.settings import Settings
from tests.support.postgres import private_schema

DAY = timedelta(days=1)


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@pytest.fixture(params=["sqlite", "postgres"])
def services(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    for name in list(os.environ):
        if name.startswith("DATAGROVE_"):
            monkeypatch.delenv(name)
    if request.param == "sqlite":
        yield build_services(Settings(data_dir=tmp_path))
        return
    with private_schema() as url:
        built = build_services(Settings(data_dir=tmp_path, catalog_url=url))
        yield built
        built.catalog.engine.dispose()


def maintenance(services: Services, clock: Clock, **changes: object) -> MaintenanceService:
    engine = services.catalog.engine
    return MaintenanceService(
        maintenance=MaintenanceCatalog(engine),
        catalog=services.catalog,
        streams=StreamCatalog(engine),
        datasets=services.datasets,
        store=services.store,
        settings=replace(maintenance_settings(services.settings), **changes),  # type: ignore[arg-type]
        audit=services.audit,
        clock=clock,
    )


def add_entries(services: Services, ages_in_days: list[float]) -> str:
    """Entries made ``ages_in_days`` ago, tagged with a fresh action name (returned)."""
    action = "test." + uuid.uuid4().hex[:8]
    now = utcnow()
    with services.catalog.engine.begin() as db:
        db.execute(
            t.audit.insert(),
            [{"time": now - age * DAY, "action": action, "outcome": "success"} for age in ages_in_days],
        )
    return action


def ages_left(services: Services, action: str) -> list[int]:
    query = sa.select(t.audit.c.time).where(t.audit.c.action == action)
    with services.catalog.engine.connect() as db:
        times = [row.time for row in db.execute(query)]
    now = utcnow().replace(tzinfo=None)
    return sorted(round((now - time.replace(tzinfo=None)) / DAY) for time in times)


def prune_entries(services: Services) -> list[str]:
    query = sa.select(t.audit.c.detail).where(t.audit.c.action == "audit.prune").order_by(t.audit.c.id)
    with services.catalog.engine.connect() as db:
        return [row.detail for row in db.execute(query)]


def test_entries_older_than_the_retention_are_deleted_and_younger_ones_kept(services):
    action = add_entries(services, [400, 366, 364, 30, 0])
    assert maintenance(services, Clock(), audit_retention_days=365).prune_audit_due() == 2
    assert ages_left(services, action) == [0, 30, 364]
    assert len(prune_entries(services)) == 1 and "2 entries" in prune_entries(services)[0]


def test_the_maintenance_loop_prunes_once_per_interval_across_nodes(services):
    clock = Clock()
    action = add_entries(services, [40, 20])
    node_a = maintenance(services, clock, audit_retention_days=30, interval_seconds=3600)
    node_b = maintenance(services, clock, audit_retention_days=30, interval_seconds=3600)
    node_a.run_due()
    assert ages_left(services, action) == [20]
    add_entries(services, [50])
    # Within the interval: the round is taken, whichever node looks.
    assert node_b.prune_audit_due() is None and node_a.prune_audit_due() is None
    clock.offset = timedelta(hours=1, seconds=1)
    assert node_b.prune_audit_due() == 1
    # A dataset's deletion cleans up its rounds, not the retention's.
    MaintenanceCatalog(services.catalog.engine).forget_deleted_datasets()
    assert node_a.prune_audit_due() is None


def test_deletion_goes_in_batches_until_nothing_old_is_left(services):
    action = add_entries(services, [100 + n for n in range(11)] + [1])
    before = utcnow() - 10 * DAY
    assert services.audit.prune(before=before, batch_rows=3, stop=lambda: False) == 11
    assert ages_left(services, action) == [1]


def test_a_stopping_server_stops_between_batches(services):
    action = add_entries(services, [100, 101, 102, 103])
    calls = iter([False, True])
    deleted = services.audit.prune(before=utcnow() - DAY, batch_rows=2, stop=lambda: next(calls))
    assert deleted == 2 and len(ages_left(services, action)) == 2


def test_a_retention_of_zero_keeps_everything(services):
    action = add_entries(services, [10_000, 1])
    assert maintenance(services, Clock(), audit_retention_days=0).prune_audit_due() is None
    assert ages_left(services, action) == [1, 10_000]


def test_the_retention_round_is_claimed_in_the_catalog(services):
    maintenance(services, Clock(), audit_retention_days=30).prune_audit_due()
    runs = sa.select(t.maintenance_runs.c.dataset_id)
    with services.catalog.engine.connect() as db:
        assert AUDIT_RETENTION in set(db.execute(runs).scalars())
