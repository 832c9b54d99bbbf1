"""Table maintenance: snapshot expiry, the orphan-file sweep and compaction, in the background and
from the CLI, and ``datagrove check``.

Every step on a dataset runs under its commit claim (``DatasetService.commit_claim``), so it never
decides on a table state that an import, a stream commit, a fold or a schema change is changing,
and only one node works on a dataset at a time; the background loop also claims each dataset's
round per interval in the catalog, so of several nodes one does it.

No step removes a file that a read may still use. A query or export resolves its snapshot first and
then reads that snapshot's files for as long as it runs, so:

- files that expired snapshots leave are recorded (with the time) *before* the snapshots leave the
  metadata, and deleted only once the grace period (longer than the longest read) has passed since;
  just before deleting, the live metadata is read again and any file it references is kept;
- the orphan sweep takes only files no live snapshot references, that are not waiting out a grace
  period, that no unfinished stream commit (COMMITTING) placed, and that are older than the safety
  age (longer than a commit claim: a commit places its files, then commits them under its claim).

Nor does either delete anything while a backup runs (``datagrove backup`` holds a lease in the
catalog while it copies the files of the snapshots it saw): the files wait for the next round.

Nor does the expiry remove the snapshot of a stream commit still COMMITTING: its retry finds its
commit key in the history and does nothing, which keeps it exactly-once.

Tables in an S3 bucket are maintained by the same code as those in the data directory: every
listing, size, time and deletion goes through ``Storage``. An object's age is its Last-Modified,
the time it was placed (for a multipart upload, when the upload began: still inside the commit
claim the safety age outlasts). A query on any node resolves its snapshot and then pins local
copies of its files in that node's file cache before it reads, so deleting an object once the
grace period is over cannot touch a running read; the copies other caches still hold of deleted
objects are evicted by their LRU in time, and are never wrong meanwhile (an object never changes,
and no live snapshot names it). Staged stream parts in the bucket (``staging/``) are not a table's
files: the stream reaper removes those of finished executions on every node.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from datagrove import metrics
from datagrove.catalog.maintenance import DROPPED_TABLES, TASK_PREFIX, MaintenanceCatalog
from datagrove.catalog.repository import Catalog, utcnow
from datagrove.catalog.streams import StreamCatalog
from datagrove.domain import ExecutionState
from datagrove.errors import NotFound
from datagrove.services.audit import AuditLog
from datagrove.services.datasets import PROCESS, DatasetService
from datagrove.tables import maintenance as tm
from datagrove.tables.check import check_table
from datagrove.tables.store import TableStore

log = logging.getLogger("datagrove.maintenance")
T = TypeVar("T")

#: The round of the activity log's retention in ``dg_maintenance_runs`` (one node per interval).
AUDIT_RETENTION = f"{TASK_PREFIX}audit-retention"


@dataclass(frozen=True)
class MaintenanceSettings:
    interval_seconds: float  # 0: no background loop
    keep_snapshots: int
    keep_days: float
    grace_seconds: float
    orphan_min_age_seconds: float
    check_min_age_seconds: float  # younger unreferenced files may belong to a commit in flight
    target_bytes: int
    min_small_files: int
    audit_retention_days: float = 0  # 0: the activity log is kept forever


@dataclass(frozen=True)
class ExpiryReport:
    dataset_id: str
    expired_snapshots: int  # removed from the metadata now (or that would be, in a dry run)
    kept_snapshots: int
    files_waiting: int  # recorded now, deletable once the grace period has passed
    files_deleted: int  # whose grace period was over
    held_for_backup: int = 0  # whose grace period was over, kept for the next round: a backup runs


@dataclass(frozen=True)
class SweepReport:
    dataset_id: str
    orphans: tuple[str, ...]  # deleted (or that would be, in a dry run)
    too_young: int  # unreferenced files still inside the safety age, or of an unfinished commit
    held_for_backup: int = 0  # orphans kept for the next round: a backup runs


@dataclass(frozen=True)
class CompactionReport:
    dataset_id: str
    files_before: int
    small_files: int  # rewritten
    files_written: int


@dataclass
class CheckReport:
    """``problems`` are disagreements between catalog, metadata and files; ``orphans`` files (or
    tables) nothing references; ``ok`` when there are neither."""

    datasets: int = 0
    files: int = 0
    problems: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    waiting: int = 0  # files of expired snapshots, deleted once their grace period has passed
    recent: list[str] = field(default_factory=list)  # unreferenced but young: maybe a commit in flight

    @property
    def ok(self) -> bool:
        return not self.problems and not self.orphans


class MaintenanceService:
    def __init__(
        self,
        *,
        maintenance: MaintenanceCatalog,
        catalog: Catalog,
        streams: StreamCatalog,
        datasets: DatasetService,
        store: TableStore,
        settings: MaintenanceSettings,
        audit: AuditLog | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._maintenance = maintenance
        self._catalog = catalog
        self._streams = streams
        self._datasets = datasets
        self._store = store
        self._settings = settings
        self._audit = audit
        self._clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the background loop --------------------------------------------------------------------

    def start(self) -> None:
        if self._settings.interval_seconds <= 0:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run_forever, name="maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run_forever(self) -> None:
        # Look a few times per interval: a dataset claimed by a node that died is due again then.
        pause = max(1.0, min(self._settings.interval_seconds / 4, 300.0))
        while not self._stopping.wait(pause):
            try:
                self.run_due()
            except Exception:
                log.exception("table maintenance failed; will try again")

    def run_due(self) -> int:
        """Maintain every dataset that no node has maintained for an interval: expire, sweep,
        compact; and prune the activity log if no node has for an interval. Returns how many
        datasets this node maintained."""
        done = 0
        self._maintenance.forget_deleted_datasets()
        self.delete_dropped_tables()
        self.prune_audit_due()
        for dataset_id in self._maintenance.dataset_ids():
            if self._stopping.is_set():
                break
            try:
                with self._datasets.commit_claim(dataset_id, wait=False) as claimed:
                    now = self._clock()
                    if not claimed or not self._maintenance.claim_round(
                        dataset_id,
                        node=PROCESS,
                        now=now,
                        not_since=now - timedelta(seconds=self._settings.interval_seconds),
                    ):
                        continue
                    self._maintain(dataset_id)
                    done += 1
                metrics.job_ended("maintenance", "success")
            except NotFound:
                continue  # deleted meanwhile
            except Exception:  # one dataset's failure must not hold up the others
                metrics.job_ended("maintenance", "failure")
                log.exception("maintaining a dataset failed", extra={"fields": {"dataset": dataset_id}})
        return done

    def delete_dropped_tables(self) -> int:
        """Delete the directories of tables dropped while a backup ran, once none runs (every node
        may: deleting a directory twice is harmless). Returns how many were deleted."""
        waiting = self._maintenance.dropped_tables()
        if not waiting or self._maintenance.backup_running():
            return 0
        for location in waiting:
            self._store.delete_directory(location)
            self._maintenance.forget_expired(DROPPED_TABLES, [location])
        log.info("dropped tables' files deleted", extra={"fields": {"tables": len(waiting)}})
        return len(waiting)

    def prune_audit_due(self) -> int | None:
        """Delete the activity log entries older than the retention, if no node has done so for an
        interval (a round claimed in the catalog under ``AUDIT_RETENTION``, like a dataset's).
        Returns how many were deleted, None when it was not this node's turn or there is no
        retention. A failure is logged and counted, and tried again next round."""
        days = self._settings.audit_retention_days
        if self._audit is None or days <= 0:
            return None
        started = time.monotonic()
        now = self._clock()
        try:
            if not self._maintenance.claim_round(
                AUDIT_RETENTION,
                node=PROCESS,
                now=now,
                not_since=now - timedelta(seconds=self._settings.interval_seconds),
            ):
                return None
            before = now - timedelta(days=days)
            deleted = self._audit.prune(before=before, stop=self._stopping.is_set)
        except Exception:
            metrics.job_ended("audit_retention", "failure")
            log.exception("pruning the activity log failed; will try again")
            return None
        metrics.job_ended("audit_retention", "success")
        log.info(
            "activity log pruned",
            extra={
                "fields": {
                    "deleted": deleted,
                    "before": before.isoformat(),
                    "ms": round((time.monotonic() - started) * 1000, 1),
                }
            },
        )
        return deleted

    def _maintain(self, dataset_id: str) -> None:
        started = time.monotonic()
        expiry = self._expire(dataset_id, dry_run=False)
        sweep = self._sweep(dataset_id, dry_run=False)
        compaction = self._compact(dataset_id, dry_run=False)
        log.info(
            "dataset maintained",
            extra={
                "fields": {
                    "dataset": dataset_id,
                    "expired_snapshots": expiry.expired_snapshots,
                    "files_deleted": expiry.files_deleted + len(sweep.orphans),
                    "files_compacted": compaction.small_files,
                    "ms": round((time.monotonic() - started) * 1000, 1),
                }
            },
        )

    # --- the steps, for the CLI -----------------------------------------------------------------

    def expire(self, *, dataset_id: str | None = None, dry_run: bool = False) -> list[ExpiryReport]:
        """Delete the files of snapshots expired more than the grace period ago, then expire the
        snapshots the retention lets go (recording the files only they referenced)."""
        return [
            self._claimed(d, lambda d: self._expire(d, dry_run=dry_run)) for d in self._targets(dataset_id)
        ]

    def sweep(self, *, dataset_id: str | None = None, dry_run: bool = False) -> list[SweepReport]:
        """Delete orphan files (see the module docstring for which)."""
        return [
            self._claimed(d, lambda d: self._sweep(d, dry_run=dry_run)) for d in self._targets(dataset_id)
        ]

    def compact(self, *, dataset_id: str | None = None, dry_run: bool = False) -> list[CompactionReport]:
        """Rewrite the small files of tables that have too many into files of the target size."""
        return [
            self._claimed(d, lambda d: self._compact(d, dry_run=dry_run)) for d in self._targets(dataset_id)
        ]

    def _targets(self, dataset_id: str | None) -> list[str]:
        if dataset_id is None:
            return self._maintenance.dataset_ids()
        self._catalog.get_dataset(dataset_id)  # NotFound for an unknown dataset
        return [dataset_id]

    def _claimed(self, dataset_id: str, step: Callable[[str], T]) -> T:
        with self._datasets.commit_claim(dataset_id):
            return step(dataset_id)

    def _expire(self, dataset_id: str, *, dry_run: bool) -> ExpiryReport:
        now = self._clock()
        due = self._maintenance.expired_files(
            dataset_id, before=now - timedelta(seconds=self._settings.grace_seconds)
        )
        deleted = held = 0
        if due:
            # A file may be referenced again (a restore of an old version): the live metadata decides.
            referenced = tm.referenced_files(self._store, dataset_id)
            deletable = [uri for uri in due if uri not in referenced]
            deleted = len(deletable)
            if not dry_run and deletable and self._maintenance.backup_running():
                # Checked under the commit claim, after the decision: a backup whose catalog copy
                # comes later cannot see these files referenced (no commit lands meanwhile).
                deleted, held = 0, len(deletable)
            elif not dry_run:
                for uri in deletable:
                    tm.delete_file(self._store.storage, uri)
                self._maintenance.forget_expired(dataset_id, due)
        plan = tm.plan_expiry(
            self._store,
            dataset_id,
            keep_last=max(1, self._settings.keep_snapshots),
            keep_since=now - timedelta(days=self._settings.keep_days),
            keep_commit_keys=self._unfinished_commit_keys(),
        )
        waiting = len(plan.unreferenced)
        if not dry_run:
            # Recorded before the snapshots leave the metadata: a crash in between leaves files
            # that wait for nothing (the check above keeps referenced ones), never unrecorded ones.
            waiting = self._maintenance.record_expired(dataset_id, plan.unreferenced, at=now)
            if plan.snapshot_ids:
                tm.expire_snapshots(self._store, dataset_id, plan.snapshot_ids)
        return ExpiryReport(dataset_id, len(plan.snapshot_ids), plan.kept, waiting, deleted, held)

    def _sweep(self, dataset_id: str, *, dry_run: bool) -> SweepReport:
        cutoff = (self._clock() - timedelta(seconds=self._settings.orphan_min_age_seconds)).timestamp()
        waiting = set(self._maintenance.expired_files(dataset_id))
        unfinished = self._unfinished_commit_keys()
        orphans: list[str] = []
        young = 0
        for stored in tm.unreferenced_files(self._store, dataset_id):
            if stored.uri in waiting:
                continue  # an expired snapshot's file: the expiry deletes it after its grace period
            name = stored.uri.rsplit("/", 1)[-1]
            if stored.modified >= cutoff or any(f"-{key}-" in name for key in unfinished):
                young += 1
                continue
            orphans.append(stored.uri)
        if not dry_run and orphans and self._maintenance.backup_running():
            return SweepReport(dataset_id, (), young, held_for_backup=len(orphans))
        if not dry_run:
            for uri in orphans:
                tm.delete_file(self._store.storage, uri)
        return SweepReport(dataset_id, tuple(orphans), young)

    def _unfinished_commit_keys(self) -> set[str]:
        """Commit keys of stream commits that placed (or may have placed) their files and have not
        finished: the reaper resumes them with the same files (``StreamService._finish_commit``)."""
        far = self._clock() + timedelta(days=365)
        committing = self._streams.idle_executions(older_than=far, state=ExecutionState.COMMITTING)
        return {e.commit_key for e in committing if e.commit_key}

    def _compact(self, dataset_id: str, *, dry_run: bool) -> CompactionReport:
        plan = tm.plan_compaction(
            self._store,
            dataset_id,
            target_bytes=self._settings.target_bytes,
            min_small_files=self._settings.min_small_files,
        )
        written = len(plan.groups)
        if plan.groups and not dry_run:
            columns = self._catalog.get_dataset(dataset_id).columns
            with self._store.staging_area() as staging:
                written = tm.compact(self._store, dataset_id, plan, columns, staging=staging)
        return CompactionReport(dataset_id, plan.files, plan.small_files, written)

    # --- check ----------------------------------------------------------------------------------

    def check(self, *, dataset_id: str | None = None) -> CheckReport:
        """Whether the catalog, the Iceberg metadata and the files agree: every dataset has its
        table, every file a snapshot references exists with its recorded size, and which files (or
        tables) nothing references. Reads only; safe beside running servers."""
        report = CheckReport()
        datasets = self._targets(dataset_id)
        if dataset_id is None:
            for orphan_table in sorted(set(self._store.table_dataset_ids()) - set(datasets)):
                report.orphans.append(f"table of dataset {orphan_table}, which does not exist")
        young_after = (self._clock() - timedelta(seconds=self._settings.check_min_age_seconds)).timestamp()
        unfinished = self._unfinished_commit_keys()
        for dataset in datasets:
            found = check_table(self._store, dataset)
            report.datasets += 1
            report.files += found.referenced
            report.problems.extend(f"dataset {dataset}: {problem}" for problem in found.problems)
            waiting = set(self._maintenance.expired_files(dataset))
            for stored in found.unreferenced:
                name = stored.uri.rsplit("/", 1)[-1]
                if stored.uri in waiting:
                    report.waiting += 1
                elif stored.modified >= young_after or any(f"-{key}-" in name for key in unfinished):
                    report.recent.append(stored.uri)
                else:
                    report.orphans.append(f"dataset {dataset}: unreferenced file {stored.uri}")
        return report
