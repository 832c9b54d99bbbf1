"""``MaintenanceCatalog``: what table maintenance keeps in the catalog database.

Files that expired snapshots left wait in ``dg_expired_files`` until their grace period is over
(a read that resolved one of those snapshots before it expired may still be reading them), and
``dg_maintenance_runs`` says when each dataset was last maintained, so that of several nodes one
does each dataset's round per interval.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.catalog.backup import backup_running

#: Rounds of work that belong to no dataset are claimed in ``dg_maintenance_runs`` under keys
#: starting with this (dataset ids are UUIDs): e.g. ``~audit-retention``.
TASK_PREFIX = "~"
#: The directories of tables dropped while a backup ran wait in ``dg_expired_files`` under this key
#: (``DatasetService.delete``): the backup may have copied a catalog that still holds the table.
DROPPED_TABLES = TASK_PREFIX + "dropped-tables"


class MaintenanceCatalog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def dataset_ids(self) -> list[str]:
        """Every dataset, oldest first."""
        query = sa.select(t.datasets.c.id).order_by(t.datasets.c.created_at, t.datasets.c.id)
        with self.engine.connect() as db:
            return list(db.execute(query).scalars())

    def backup_running(self) -> bool:
        """Whether a backup is copying files now (it holds a live lease): delete none meanwhile."""
        return backup_running(self.engine)

    # --- expired files --------------------------------------------------------------------------

    def record_expired(self, dataset_id: str, uris: Iterable[str], *, at: datetime) -> int:
        """Remember ``uris`` as left by snapshots expiring ``at`` (a URI already waiting keeps its
        earlier time, which is the one its readers started from); returns how many were new."""
        wanted = set(uris)
        if not wanted:
            return 0
        with self.engine.begin() as db:
            known = set(
                db.execute(
                    sa.select(t.expired_files.c.uri).where(t.expired_files.c.dataset_id == dataset_id)
                ).scalars()
            )
            new = sorted(wanted - known)
            if new:
                db.execute(
                    t.expired_files.insert(),
                    [{"dataset_id": dataset_id, "uri": uri, "expired_at": at} for uri in new],
                )
        return len(new)

    def expired_files(self, dataset_id: str, *, before: datetime | None = None) -> list[str]:
        """URIs waiting for deletion, those that expired before ``before`` only when it is given."""
        query = sa.select(t.expired_files.c.uri).where(t.expired_files.c.dataset_id == dataset_id)
        if before is not None:
            query = query.where(t.expired_files.c.expired_at < before)
        with self.engine.connect() as db:
            return list(db.execute(query.order_by(t.expired_files.c.id)).scalars())

    def hold_dropped_table(self, location: str, *, at: datetime) -> None:
        """Remember a dropped table's directory, left for ``dropped_tables`` to hand to maintenance."""
        self.record_expired(DROPPED_TABLES, [location], at=at)

    def dropped_tables(self) -> list[str]:
        """Directories of dropped tables whose files wait until no backup runs."""
        return self.expired_files(DROPPED_TABLES)

    def forget_expired(self, dataset_id: str, uris: Iterable[str]) -> None:
        """Forget ``uris`` (deleted, or found referenced again)."""
        gone = list(uris)
        with self.engine.begin() as db:
            for start in range(0, len(gone), 500):
                db.execute(
                    t.expired_files.delete().where(
                        t.expired_files.c.dataset_id == dataset_id,
                        t.expired_files.c.uri.in_(gone[start : start + 500]),
                    )
                )

    def forget_deleted_datasets(self) -> None:
        """Forget datasets that are gone (a dataset's deletion removes its table and files)."""
        live = sa.select(t.datasets.c.id)
        with self.engine.begin() as db:
            db.execute(
                t.expired_files.delete().where(
                    t.expired_files.c.dataset_id.not_in(live),
                    ~t.expired_files.c.dataset_id.startswith(TASK_PREFIX, autoescape=True),
                )
            )
            db.execute(
                t.maintenance_runs.delete().where(
                    t.maintenance_runs.c.dataset_id.not_in(live),
                    ~t.maintenance_runs.c.dataset_id.startswith(TASK_PREFIX, autoescape=True),
                )
            )

    # --- rounds ---------------------------------------------------------------------------------

    def claim_round(self, dataset_id: str, *, node: str, now: datetime, not_since: datetime) -> bool:
        """Claim this interval's maintenance of the dataset (or task: ``TASK_PREFIX``) for ``node``: True when no node has
        claimed it since ``not_since``. One conditional UPDATE (or the first INSERT) wins per round
        across nodes."""
        r = t.maintenance_runs
        with self.engine.begin() as db:
            claimed = db.execute(
                r.update()
                .where(r.c.dataset_id == dataset_id, r.c.last_run_at < not_since)
                .values(last_run_at=now, last_run_by=node)
            )
            if claimed.rowcount == 1:
                return True
            if db.execute(sa.select(r.c.dataset_id).where(r.c.dataset_id == dataset_id)).first():
                return False
        try:
            with self.engine.begin() as db:
                db.execute(r.insert().values(dataset_id=dataset_id, last_run_at=now, last_run_by=node))
        except sa.exc.IntegrityError:
            return False  # another node's INSERT landed first
        return True
