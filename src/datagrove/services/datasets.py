"""Datasets: metadata in the catalog, data in the table store. Used by every API family and the CLI."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from datagrove import metrics
from datagrove.catalog.appends import AppendCatalog
from datagrove.catalog.maintenance import MaintenanceCatalog
from datagrove.catalog.permissions import PermissionCatalog
from datagrove.catalog.repository import Catalog, columns_from_json, utcnow
from datagrove.catalog.streams import StreamCatalog
from datagrove.disk_space import require_free_space, translate_disk_full
from datagrove.domain import AccessLevel, Actor, Dataset, Grant, PrincipalType, Role, UpdateMethod
from datagrove.errors import BadRequest, Conflict, NotFound
from datagrove.services.access import AccessControl, Action
from datagrove.services.audit import AuditLog
from datagrove.services.policies import PolicyService
from datagrove.services.versions import read_version
from datagrove.tables.buffered import BufferedRows
from datagrove.tables.csv_ingest import csv_to_parquet
from datagrove.tables.store import TableStore
from datagrove.tables.types import Column, validate_schema
from datagrove.tables.versions import made_by_properties

log = logging.getLogger("datagrove.datasets")

#: This process, as commit claims name their owner: host and process id (and a claim's own suffix).
PROCESS = f"{socket.gethostname()}:{os.getpid()}"

MAX_PAGE = 50


class DatasetService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        streams: StreamCatalog,
        appends: AppendCatalog,
        store: TableStore,
        access: AccessControl,
        permissions: PermissionCatalog,
        policies: PolicyService,
        audit: AuditLog,
        ingest_threads: int,
        ingest_slots: threading.BoundedSemaphore,
        commit_claim_seconds: float = 60,
        min_free_disk_bytes: int = 0,
        maintenance: MaintenanceCatalog | None = None,
    ) -> None:
        self._maintenance = maintenance
        self._ingest_slots = ingest_slots
        self._min_free_disk_bytes = min_free_disk_bytes
        self._access = access
        self._permissions = permissions
        self._policies = policies
        self._audit = audit
        self._catalog = catalog
        self._streams = streams
        self._appends = appends
        self._store = store
        self._ingest_threads = ingest_threads
        self._commit_claim_seconds = commit_claim_seconds

    def create(
        self,
        *,
        actor: Actor,
        name: str,
        description: str,
        columns: Sequence[Column],
        update_method: UpdateMethod = UpdateMethod.REPLACE,
    ) -> Dataset:
        """A new, empty dataset owned by ``actor``, with its Iceberg table and its stream (pydomo's
        ``ds_update`` finds a dataset's stream by searching for it, whichever API created it)."""
        self._access.require(actor, Action.CREATE_DATASET)
        validate_schema(list(columns))
        dataset_id = str(uuid.uuid4())
        # The table first: a crash after it leaves an unreferenced table, never a dataset without one.
        self._store.create_table(dataset_id, columns)
        try:
            dataset = self._catalog.create_dataset(
                dataset_id=dataset_id,
                name=name,
                description=description,
                owner_id=actor.user.id,
                columns=columns,
                stream_update_method=update_method,
            )
        except BaseException:
            self._drop_table(dataset_id)
            raise
        self._audit.record(
            actor, "dataset.create", object_type="DATASET", object_id=dataset.id, object_name=name
        )
        return dataset

    def get(self, *, actor: Actor, dataset_id: str, action: Action = Action.VIEW) -> Dataset:
        dataset = self._catalog.get_dataset(dataset_id)
        self._access.require(actor, action, dataset)
        return dataset

    def list_datasets(
        self, *, actor: Actor, limit: int, offset: int, name_like: str | None = None, sort: str | None = None
    ) -> list[Dataset]:
        self._access.require(actor, Action.LIST_DATASETS)
        limit = max(0, min(limit, MAX_PAGE))
        offset = max(0, offset)
        # Filtering in the query (not after it) keeps pages full and offsets right.
        visible_to = None if actor.user.role is Role.ADMIN else actor.user.id
        found = self._catalog.list_datasets(
            limit=limit, offset=offset, name_like=name_like, sort=sort, visible_to=visible_to
        )
        return found

    def update(self, *, actor: Actor, dataset_id: str, changes: dict[str, Any]) -> Dataset:
        """Apply ``changes`` (name, description, columns, owner_id, pdp_enabled); a schema change keeps
        the rows, casting columns whose type changed."""
        dataset = self.get(actor=actor, dataset_id=dataset_id, action=Action.EDIT)
        if "pdp_enabled" in changes and changes["pdp_enabled"] != dataset.pdp_enabled:
            self._access.require(actor, Action.MANAGE_POLICIES, dataset)
        if "owner_id" in changes and changes["owner_id"] != dataset.owner.id:
            self._access.require(actor, Action.REVOKE, dataset)  # a transfer is for owners and co-owners
            self._catalog.get_user(changes["owner_id"])  # NotFound for an unknown owner
            self._permissions.grant(
                Grant(dataset_id, PrincipalType.USER, changes["owner_id"], AccessLevel.OWNER),
                granted_by=actor.user.id,
            )
        if "columns" in changes:
            columns = list(changes["columns"])
            validate_schema(columns)
            with self.commit_claim(dataset_id):
                record = self._catalog.get_dataset(dataset_id)
                current = record.columns
                if tuple(columns) != current:
                    # The buffered one-row appends go into the rewrite too: each row then goes
                    # through every schema change the table's rows go through, in order.
                    buffered = self.buffered_rows(dataset_id)
                    if not columns and (record.row_count or buffered):
                        # A data file cannot hold rows without columns.
                        raise BadRequest(
                            "a dataset with rows needs at least one column; to empty it, REPLACE its "
                            "data with an empty body first"
                        )
                    with metrics.committing("schema"):
                        self._store.change_schema(
                            dataset_id,
                            current,
                            columns,
                            buffered=buffered,
                            snapshot_properties=made_by_properties("schema", user_id=actor.user.id),
                        )
                    self._catalog.update_dataset(dataset_id, columns=columns)
                    self.record_data_change(dataset_id)
            changes = {key: value for key, value in changes.items() if key != "columns"} | {
                "columns": columns
            }
        updated = self._catalog.update_dataset(dataset_id, **changes)
        self._audit.record(
            actor,
            "dataset.update",
            object_type="DATASET",
            object_id=dataset_id,
            object_name=updated.name,
            detail=", ".join(sorted(changes)),
        )
        return updated

    def delete(self, *, actor: Actor, dataset_id: str) -> None:
        """Delete the dataset and its data. Its streams stay, as read-only tombstones, until they are
        deleted themselves (Domo's Stream API); their unfinished executions end and their staged
        parts are removed."""
        self.get(actor=actor, dataset_id=dataset_id, action=Action.DELETE)
        for execution_id in self._streams.delete_dataset_keeping_streams(dataset_id):
            self._store.discard_execution(execution_id)
        self._drop_table(dataset_id)
        self._audit.record(actor, "dataset.delete", object_type="DATASET", object_id=dataset_id)

    def _drop_table(self, dataset_id: str) -> None:
        """Drop the dataset's table and delete its files, unless a backup runs: it may have copied
        the catalog while the table was still in it, and have its files still to copy. Then they
        wait for maintenance, which deletes them once no backup runs. Asked after the drop: a
        backup that starts later copies a catalog without the table."""
        location = self._store.drop_table(dataset_id, delete_files=False)
        if location is None:
            return
        if self._maintenance is not None and self._maintenance.backup_running():
            self._maintenance.hold_dropped_table(location, at=utcnow())
            log.info(
                "dropped table's files kept for a running backup", extra={"fields": {"location": location}}
            )
            return
        self._store.delete_directory(location)

    # --- data -----------------------------------------------------------------------------------

    def staging_area(self) -> Any:
        """A private directory for receiving one upload; removed when the ``with`` block ends.

        Refused (507) while the data directory's disk has less free space than the
        ``min_free_disk_bytes`` floor: new uploads stop before the disk is full, leaving room for
        the commits and folds already under way."""
        require_free_space(self._store.local_dirs(), floor=self._min_free_disk_bytes, what="the upload")
        return self._store.staging_area()

    def import_csv(self, *, actor: Actor, dataset_id: str, csv_path: Path, method: UpdateMethod) -> Dataset:
        """Validate the CSV against the schema, convert it to Parquet and commit it in one transaction.

        Bad data raises ``InvalidCsv`` naming line, column and value, and nothing is committed.
        """
        started = time.monotonic()
        dataset = self.get(actor=actor, dataset_id=dataset_id, action=Action.EDIT)
        with translate_disk_full("the import"):
            return self._import(actor, dataset, csv_path, method, started)

    def _import(
        self, actor: Actor, dataset: Dataset, csv_path: Path, method: UpdateMethod, started: float
    ) -> Dataset:
        dataset_id = dataset.id
        parquet = csv_path.with_suffix(".parquet")
        with self._ingest_slots:
            ingested = csv_to_parquet(
                csv_path,
                parquet,
                dataset.columns,
                threads=self._ingest_threads,
                parquet=self._store.parquet_layout,
                field_ids=self._store.field_ids(dataset_id, dataset.columns),
            )
        metrics.converted("import", fast=ingested.canonical, csv_bytes=csv_path.stat().st_size)
        replace = method is UpdateMethod.REPLACE
        # Without columns the file holds no row (any row was refused above), and Iceberg cannot add a
        # file without columns: such an import commits no file.
        files = [ingested.path] if dataset.columns else []
        with self.commit_claim(dataset_id), metrics.committing("import"):
            self._store.commit_files(
                dataset_id,
                files,
                replace=replace,
                appended_through=self.appended_rows_so_far(dataset_id) if replace else None,
                snapshot_properties=made_by_properties("import", user_id=actor.user.id),
            )
        updated = self.record_data_change(dataset_id)
        self._audit.record(
            actor,
            "dataset.import",
            object_type="DATASET",
            object_id=dataset_id,
            object_name=dataset.name,
            detail=f"{method.value}, {ingested.rows} rows",
        )
        log.info(
            "dataset import",
            extra={
                "fields": {
                    "dataset": dataset_id,
                    "method": method.value,
                    "rows": ingested.rows,
                    "conversion": "canonical" if ingested.canonical else "strict",
                    "total_rows": updated.row_count,
                    "seconds": round(time.monotonic() - started, 3),
                }
            },
        )
        return updated

    def record_data_change(self, dataset_id: str) -> Dataset:
        """Store the table's current row count, watermark and data time in the catalog after a
        commit, and forget the buffered one-row appends the table now holds.

        Writers racing on one dataset each saw the state of their own snapshot; the newest must win.
        Each writer stores the current state and checks it again afterwards, so whichever finishes
        last stores the newest snapshot's.
        """
        for _ in range(10):
            state = self._store.table_state(dataset_id)
            self._appends.record_snapshot(
                dataset_id,
                total_rows=state.total_rows,
                watermark=state.appended_through,
                data_updated_at=utcnow(),
            )
            if self._store.table_state(dataset_id) == state:
                break
        return self._catalog.get_dataset(dataset_id)

    @contextlib.contextmanager
    def commit_claim(self, dataset_id: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold the dataset's commit claim (in the catalog, so across nodes) for the ``with`` block:
        every commit to a dataset's table (import, stream commit, fold, schema change) takes its turn,
        so none decides on a table state that another changes under it: a REPLACE reads which
        appended rows it discards, a fold which rows it adds, a schema change which rows it rewrites.
        Yields True; with ``wait=False`` yields False at once if another holds the claim.

        A claim runs out after ``commit_claim_seconds``, so one left by a process that died does not
        block the dataset for longer; the Iceberg commit's own conflict check still stands behind it.
        """
        owner = f"{PROCESS}:{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + self._commit_claim_seconds + 5
        while True:
            try:
                claimed = self._appends.claim_commit(
                    dataset_id, owner=owner, seconds=self._commit_claim_seconds
                )
            except KeyError:
                raise NotFound(f"dataset {dataset_id} does not exist") from None
            if claimed or not wait:
                break
            if time.monotonic() > deadline:
                raise Conflict(f"another commit to dataset {dataset_id} is taking too long; try again")
            time.sleep(0.02)
        try:
            yield claimed
        finally:
            if claimed:
                self._appends.release_commit(dataset_id, owner=owner)

    def release_dead_claims(self) -> int:
        """Release the commit claims left by processes of this host that are gone (at start)."""
        host = socket.gethostname()

        def dead(owner: str) -> bool:
            owner_host, _, rest = owner.partition(":")
            pid = rest.partition(":")[0]
            return owner_host == host and pid.isdigit() and not _alive(int(pid))

        return self._appends.release_claims_of(dead)

    def appended_rows_so_far(self, dataset_id: str) -> int:
        """The number of the last one-row append acknowledged so far: a REPLACE commit records it
        as its watermark, so every row acknowledged before the REPLACE is replaced with the rest."""
        return self._appends.last_seq(dataset_id)

    def buffered_rows(self, dataset_id: str) -> list[BufferedRows]:
        """One-row appends that may not be in the table yet, oldest first. Read them *before*
        resolving the table's snapshot, and keep those after its watermark (``TableStore`` does)."""
        return [
            BufferedRows(batch.last_seq, columns_from_json(batch.schema_json), batch.csv)
            for batch in self._appends.pending(dataset_id)
        ]

    def export_csv(
        self, *, actor: Actor, dataset_id: str, include_header: bool, version: str | None = None
    ) -> Iterator[bytes]:
        """The dataset as ``actor`` may see it, as CSV; with ``version``, that earlier version
        (``services/versions.py``: its own columns, the same row-level policies, no buffered rows)."""
        dataset = self.get(actor=actor, dataset_id=dataset_id)
        if version is not None:
            past = read_version(self._store, dataset, version)
            self._audit.record(
                actor,
                "dataset.export",
                object_type="DATASET",
                object_id=dataset.id,
                object_name=dataset.name,
                detail=f"version {version}",
            )
            return self._store.export_csv(
                dataset_id,
                past.columns,
                include_header=include_header,
                row_filter=self._policies.row_filter(actor, dataset, past.columns),
                at=past.snapshot,
            )
        self._audit.record(
            actor, "dataset.export", object_type="DATASET", object_id=dataset.id, object_name=dataset.name
        )
        buffered = self.buffered_rows(dataset_id)  # before the snapshot: see buffered_rows
        return self._store.export_csv(
            dataset_id,
            dataset.columns,
            include_header=include_header,
            row_filter=self._policies.row_filter(actor, dataset),
            buffered=buffered,
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
