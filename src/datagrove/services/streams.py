"""Streams and their executions: parallel part uploads committed atomically, exactly once.

An execution is a persisted state machine::

    ACTIVE --commit--> COMMITTING --> SUCCESS
       |                   '-------> ERROR
       '--abort / superseded / idle--> ABORTED

Each part is validated and converted to Parquet when it arrives, so a commit only moves files and
writes one Iceberg snapshot. The commit carries a key that the snapshot records: a commit retried
after a crash (or raced by a second request) finds its own snapshot and does nothing twice.

A stream outlives its dataset: once the dataset is deleted the stream is a *tombstone* that its
readers (admins and the dataset's last owner) can still read, with its executions, and delete;
every write to it (an execution, a part, a commit, an abort, an update) is 410 Gone.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from datagrove import crashpoints, metrics
from datagrove.catalog.repository import Catalog, utcnow
from datagrove.catalog.streams import StreamCatalog
from datagrove.disk_space import translate_disk_full
from datagrove.domain import (
    Actor,
    Dataset,
    DeletedDataset,
    Execution,
    ExecutionState,
    Part,
    PartState,
    Role,
    Stream,
    UpdateMethod,
)
from datagrove.errors import BadRequest, Conflict, DatagroveError, Gone, InvalidCsv, NotFound
from datagrove.services.access import AccessControl, Action
from datagrove.services.audit import AuditLog
from datagrove.services.datasets import DatasetService
from datagrove.tables.csv_ingest import csv_to_parquet
from datagrove.tables.store import TableStore
from datagrove.tables.types import Column

log = logging.getLogger("datagrove.streams")

MAX_STREAM_PAGE = 500
TERMINAL = (ExecutionState.SUCCESS, ExecutionState.ERROR, ExecutionState.ABORTED)


@dataclass(frozen=True)
class StreamView:
    """A stream with its dataset, as the API shows it."""

    stream: Stream
    dataset: Dataset


@dataclass(frozen=True)
class Tombstone:
    """A stream whose dataset was deleted, with what it kept of that dataset."""

    stream: Stream
    dataset: DeletedDataset


@dataclass(frozen=True)
class UploadedPart:
    execution: Execution
    part: Part


class StreamService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        streams: StreamCatalog,
        store: TableStore,
        datasets: DatasetService,
        access: AccessControl,
        audit: AuditLog,
        ingest_threads: int,
        ingest_slots: threading.BoundedSemaphore,
        idle_timeout_seconds: float,
        commit_resume_after_seconds: float,
    ) -> None:
        self._commit_resume_after = commit_resume_after_seconds
        self._ingest_slots = ingest_slots
        self._catalog = catalog
        self._streams = streams
        self._store = store
        self._datasets = datasets
        self._access = access
        self._audit = audit
        self._ingest_threads = ingest_threads
        self._idle_timeout = idle_timeout_seconds

    # --- streams ------------------------------------------------------------------------------

    def create(
        self, *, actor: Actor, name: str, description: str, columns: list[Column], update_method: UpdateMethod
    ) -> StreamView:
        dataset = self._datasets.create(
            actor=actor, name=name, description=description, columns=columns, update_method=update_method
        )
        return StreamView(self._streams.list_streams(limit=1, offset=0, dataset_id=dataset.id)[0], dataset)

    def read(self, *, actor: Actor, stream_id: int) -> StreamView | Tombstone:
        """The stream as its reader sees it: live, or a tombstone if its dataset was deleted."""
        return self._find(actor=actor, stream_id=stream_id, action=Action.VIEW)

    def get(self, *, actor: Actor, stream_id: int, action: Action = Action.VIEW) -> StreamView:
        """A live stream the actor may ``action``; 410 for a tombstone its reader asks for."""
        found = self._find(actor=actor, stream_id=stream_id, action=action)
        if isinstance(found, Tombstone):
            raise Gone(
                f"dataset {found.stream.dataset_id} ({found.dataset.name!r}) of stream {stream_id} was "
                "deleted; the stream takes no new executions, parts, commits or changes",
                dataset_id=found.stream.dataset_id,
            )
        return found

    def _find(self, *, actor: Actor, stream_id: int, action: Action) -> StreamView | Tombstone:
        try:
            stream = self._streams.get_stream(stream_id)
            if stream.deleted_dataset is not None:
                self._access.require_deleted(actor, stream.deleted_dataset, f"stream {stream_id}")
                return Tombstone(stream, stream.deleted_dataset)
            dataset = self._datasets.get(actor=actor, dataset_id=stream.dataset_id, action=action)
        except NotFound:
            raise NotFound(f"stream {stream_id} does not exist") from None
        return StreamView(stream, dataset)

    def list_streams(
        self,
        *,
        actor: Actor,
        limit: int,
        offset: int,
        sort: str | None = None,
        dataset_id: str | None = None,
        dataset_name: str | None = None,
        owner_id: int | None = None,
    ) -> list[StreamView]:
        self._access.require(actor, Action.LIST_DATASETS)
        streams = self._streams.list_streams(
            limit=max(0, min(limit, MAX_STREAM_PAGE)),
            offset=max(0, offset),
            sort=sort,
            dataset_id=dataset_id,
            dataset_name=dataset_name,
            owner_id=owner_id,
            visible_to=None if actor.user.role is Role.ADMIN else actor.user.id,
        )
        views = []
        for stream in streams:
            try:
                views.append(StreamView(stream, self._catalog.get_dataset(stream.dataset_id)))
            except NotFound:
                continue  # its dataset was deleted since the page was read
        return views

    def search(self, *, actor: Actor, query: str, limit: int, offset: int) -> list[StreamView]:
        """``q`` as Domo takes it: ``dataSource.id:<id>``, ``dataSource.name:<name>`` or
        ``dataSource.owner.id:<id>`` (split on the first colon)."""
        field, _, value = query.partition(":")
        filters: dict[str, Any] = {}
        match field.strip():
            case "dataSource.id" | "dataSet.id":
                filters["dataset_id"] = value.strip()
            case "dataSource.name" | "dataSet.name":
                filters["dataset_name"] = value
            case "dataSource.owner.id" | "dataSet.owner.id":
                # ASCII digits within a 64-bit id: int() refuses '²', and the catalog a larger number.
                if not (value.strip().isascii() and value.strip().isdigit()) or int(value) >= 2**63:
                    raise BadRequest(f"dataSource.owner.id must be a user id, not {value!r}")
                filters["owner_id"] = int(value)
            case _:
                raise BadRequest(
                    f"cannot search on {field!r}; use dataSource.id, dataSource.name or dataSource.owner.id"
                )
        return self.list_streams(actor=actor, limit=limit, offset=offset, **filters)

    def update(
        self,
        *,
        actor: Actor,
        stream_id: int,
        update_method: UpdateMethod | None,
        name: str | None = None,
        description: str | None = None,
        columns: list[Column] | None = None,
    ) -> StreamView:
        """Change what is given (None: unchanged). ``name``, ``description`` and ``columns`` belong to
        the dataset and change through the dataset service (a schema change keeps the rows); they
        are applied first, so a refused schema leaves the update method unchanged too."""
        view = self.get(actor=actor, stream_id=stream_id, action=Action.EDIT)
        dataset, stream = view.dataset, view.stream
        # Only what differs: clients PUT back the whole object they read.
        changes: dict[str, Any] = {
            key: value
            for key, value, now in (
                ("name", name, dataset.name),
                ("description", description, dataset.description),
                ("columns", columns, list(dataset.columns)),
            )
            if value is not None and value != now
        }
        if changes:
            dataset = self._datasets.update(actor=actor, dataset_id=dataset.id, changes=changes)
        if update_method is not None:
            stream = self._streams.update_stream(stream_id, update_method=update_method)
            self._audit.record(
                actor, "stream.update", object_type="STREAM", object_id=stream_id, detail=update_method.value
            )
        return StreamView(stream, dataset)

    def delete(self, *, actor: Actor, stream_id: int) -> None:
        """Delete the stream and its executions; its dataset stays. A tombstone is deleted by those
        who may read it."""
        self._find(actor=actor, stream_id=stream_id, action=Action.EDIT)
        for execution_id in {p.execution_id for p in self._streams.delete_stream(stream_id)}:
            self._store.discard_execution(execution_id)
        self._audit.record(actor, "stream.delete", object_type="STREAM", object_id=stream_id)

    # --- executions -----------------------------------------------------------------------------

    def create_execution(
        self, *, actor: Actor, stream_id: int, update_method: UpdateMethod | None
    ) -> Execution:
        view = self.get(actor=actor, stream_id=stream_id, action=Action.EDIT)
        execution, aborted = self._streams.create_execution(
            stream_id=stream_id, update_method=update_method or view.stream.update_method
        )
        for execution_id in aborted:
            self._store.discard_execution(execution_id)
        return execution

    def get_execution(self, *, actor: Actor, stream_id: int, execution_id: int) -> Execution:
        self.read(actor=actor, stream_id=stream_id)
        return self._streams.get_execution(stream_id, execution_id)

    def writable_execution(self, *, actor: Actor, stream_id: int, execution_id: int) -> Execution:
        """The execution, if the actor may upload to and commit it (checked before a part's body is
        read); 410 when the stream's dataset was deleted."""
        self.get(actor=actor, stream_id=stream_id, action=Action.EDIT)
        return self._streams.get_execution(stream_id, execution_id)

    def list_executions(
        self, *, actor: Actor, stream_id: int, limit: int, offset: int, newest_first: bool = False
    ) -> list[Execution]:
        self.read(actor=actor, stream_id=stream_id)
        return self._streams.list_executions(
            stream_id,
            limit=max(0, min(limit, MAX_STREAM_PAGE)),
            offset=max(0, offset),
            newest_first=newest_first,
        )

    def upload_part(
        self,
        *,
        actor: Actor,
        stream_id: int,
        execution_id: int,
        part_number: int,
        csv_path: Path,
        received_bytes: int,
        checksum: str,
    ) -> UploadedPart:
        """Validate part ``part_number`` against the schema and stage it as Parquet, replacing an
        earlier upload of the same number. A bad part answers 400 naming part, line, column and
        value, is remembered as failed (so a commit refuses until it is uploaded again), and
        leaves the execution ACTIVE."""
        view = self.get(actor=actor, stream_id=stream_id, action=Action.EDIT)
        execution = self._streams.get_execution(stream_id, execution_id)
        if execution.state is not ExecutionState.ACTIVE:
            raise Conflict(
                f"execution {execution_id} is {execution.state.value}; parts can no longer be uploaded"
            )
        if part_number < 0:
            raise BadRequest("part ids are non-negative integers")
        if csv_path.stat().st_size == 0:
            raise BadRequest(f"part {part_number} is empty")
        target = (
            self._store.execution_dir(execution_id)
            / f"part-{part_number:012d}-{uuid.uuid4().hex[:8]}.parquet"
        )
        started = time.monotonic()
        try:
            # Parts wait their turn here, already on disk: conversions at once are bounded so that
            # parallel uploads cannot oversubscribe the cores or the memory.
            with self._ingest_slots, translate_disk_full(f"converting part {part_number}"):
                ingested = csv_to_parquet(
                    csv_path,
                    target,
                    view.dataset.columns,
                    threads=self._ingest_threads,
                    label=f"part {part_number}",
                    parquet=self._store.parquet_layout,
                    field_ids=self._store.field_ids(view.dataset.id, view.dataset.columns),
                )
                metrics.converted("stream_part", fast=ingested.canonical, csv_bytes=csv_path.stat().st_size)
                # From here the part lives where any node's commit finds it (on S3: in the bucket).
                location = self._store.stage_file(execution_id, target)
        except InvalidCsv as exc:
            failed = Part(
                execution_id, part_number, PartState.FAILED, None, 0, received_bytes, checksum, exc.message
            )
            self._discard_replaced(self._streams.record_part(failed))
            raise
        except BaseException:
            # A conversion cut short (a full disk) may leave a partial file: no part records it.
            target.unlink(missing_ok=True)
            raise
        part = Part(
            execution_id,
            part_number,
            PartState.READY,
            location,
            ingested.rows,
            received_bytes,
            checksum,
            None,
        )
        try:
            with translate_disk_full(f"recording part {part_number}"):
                replaced = self._streams.record_part(part)
        except BaseException:
            self._store.discard_file(location)
            raise
        self._discard_replaced(replaced)
        log.info(
            "part staged",
            extra={
                "fields": {
                    "execution": execution_id,
                    "part": part_number,
                    "rows": ingested.rows,
                    "conversion": "canonical" if ingested.canonical else "strict",
                    "seconds": round(time.monotonic() - started, 3),
                }
            },
        )
        return UploadedPart(self._streams.get_execution(stream_id, execution_id), part)

    def commit(
        self, *, actor: Actor, stream_id: int, execution_id: int, update_method: UpdateMethod | None = None
    ) -> Execution:
        """Commit every part, in ascending part number, as one Iceberg transaction. Committing a
        committed execution answers the same; a commit interrupted by a crash resumes.

        ``update_method``, when given, replaces the execution's own at the moment the commit starts
        (Domo's upload sessions open with ``action: null`` and decide at commit). It is recorded with
        the move to COMMITTING, so a resumed or retried commit keeps the method it started with."""
        view = self.get(actor=actor, stream_id=stream_id, action=Action.EDIT)
        execution = self._streams.get_execution(stream_id, execution_id)
        if execution.state is ExecutionState.SUCCESS:
            return execution
        if execution.state in (ExecutionState.ABORTED, ExecutionState.ERROR):
            raise Conflict(f"execution {execution_id} is {execution.state.value} and cannot be committed")
        if execution.state is ExecutionState.ACTIVE:
            failed = [p for p in self._streams.parts(execution_id) if p.state is PartState.FAILED]
            if failed:
                raise Conflict(
                    f"part {failed[0].part} failed ({failed[0].error}); upload it again before committing"
                )
            commit_key = f"{time.time_ns():020d}-e{execution_id}"
            method = update_method or execution.update_method
            if not self._streams.transition(
                execution_id,
                from_states=(ExecutionState.ACTIVE,),
                to=ExecutionState.COMMITTING,
                commit_key=commit_key,
                update_method=method.value,
            ):
                return self.commit(actor=actor, stream_id=stream_id, execution_id=execution_id)  # lost a race
            execution = self._streams.get_execution(stream_id, execution_id)
        committed = self._finish_commit(view.dataset, execution)
        self._audit.record(
            actor,
            "execution.commit",
            object_type="DATASET",
            object_id=view.dataset.id,
            object_name=view.dataset.name,
            detail=f"stream {stream_id} execution {execution_id}, {committed.rows} rows",
        )
        return committed

    def _finish_commit(self, dataset: Dataset, execution: Execution) -> Execution:
        started = time.monotonic()
        assert execution.commit_key is not None
        parts = [p for p in self._streams.parts(execution.id) if p.state is PartState.READY]
        try:
            replace = execution.update_method is UpdateMethod.REPLACE
            with (
                translate_disk_full("the commit"),
                self._datasets.commit_claim(dataset.id),
                metrics.committing("stream"),
            ):
                self._store.commit_files(
                    dataset.id,
                    [p.path for p in parts if p.path],
                    replace=replace,
                    commit_key=execution.commit_key,
                    commit_ns=int(execution.commit_key.split("-")[0]),
                    appended_through=self._datasets.appended_rows_so_far(dataset.id) if replace else None,
                )
        except DatagroveError as exc:
            if exc.status >= 500:
                # Possibly transient (a full disk: 507): stays COMMITTING with its staged files, and
                # a retried commit resumes it.
                raise
            self._streams.transition(
                execution.id,
                from_states=(ExecutionState.COMMITTING,),
                to=ExecutionState.ERROR,
                error=exc.message,
            )
            self._store.discard_execution(execution.id)
            raise Conflict(f"commit failed: {exc.message}") from exc
        except ValueError as exc:  # pyiceberg: the staged files no longer fit the table's schema
            self._streams.transition(
                execution.id,
                from_states=(ExecutionState.COMMITTING,),
                to=ExecutionState.ERROR,
                error=str(exc),
            )
            self._store.discard_execution(execution.id)
            raise Conflict(f"commit failed: the parts no longer fit the dataset's schema ({exc})") from exc
        crashpoints.reached(crashpoints.COMMIT_LANDED)
        rows = sum(p.rows for p in parts)
        self._streams.transition(
            execution.id,
            from_states=(ExecutionState.COMMITTING,),
            to=ExecutionState.SUCCESS,
            rows=rows,
            bytes=sum(p.bytes for p in parts),
        )
        self._datasets.record_data_change(dataset.id)
        self._store.discard_execution(execution.id)
        log.info(
            "execution committed",
            extra={
                "fields": {
                    "execution": execution.id,
                    "dataset": dataset.id,
                    "parts": len(parts),
                    "rows": rows,
                    "method": execution.update_method.value,
                    "ms": round((time.monotonic() - started) * 1000, 1),
                }
            },
        )
        return self._streams.get_execution(execution.stream_id, execution.id)

    def abort(self, *, actor: Actor, stream_id: int, execution_id: int) -> Execution:
        self.get(actor=actor, stream_id=stream_id, action=Action.EDIT)
        execution = self._streams.get_execution(stream_id, execution_id)
        if execution.state in (ExecutionState.SUCCESS, ExecutionState.COMMITTING):
            raise Conflict(f"execution {execution_id} is {execution.state.value} and cannot be aborted")
        self._abort(execution_id, "aborted by the client")
        self._audit.record(
            actor,
            "execution.abort",
            object_type="STREAM",
            object_id=stream_id,
            detail=f"execution {execution_id}",
        )
        return self._streams.get_execution(stream_id, execution_id)

    def abort_current(self, *, actor: Actor, stream_id: int) -> None:
        self.get(actor=actor, stream_id=stream_id, action=Action.EDIT)
        for execution_id in self._streams.active_execution_ids(stream_id):
            self._abort(execution_id, "aborted by the client")

    def reap_idle(self) -> int:
        """Abort executions idle for longer than the setting and reclaim staged files of executions
        that are over; returns how many executions were aborted. Safe on every node at once."""
        cutoff = utcnow() - timedelta(seconds=self._idle_timeout)
        aborted = 0
        for execution in self._streams.idle_executions(older_than=cutoff):
            if execution.connector_run:
                continue  # a run's liveness is its runner's heartbeat (services/connector_runs.py)
            # Every node's reaper sees the same idle executions; the one whose transition lands counts it.
            aborted += self._abort(execution.id, f"idle for longer than {int(self._idle_timeout)} s")
        self._resume_stalled_commits()
        # An upload's staging area is written continuously while its body arrives; one untouched
        # for an hour belongs to a request that died with its process.
        self._store.reclaim_abandoned_uploads(idle_seconds=3600)
        for execution_id in self._store.staged_execution_ids():
            state = self._streams.execution_state(execution_id)
            if state is None or state in TERMINAL:
                self._store.discard_execution(execution_id)
        return aborted

    def _resume_stalled_commits(self) -> None:
        """Finish commits whose process died midway (COMMITTING for longer than the setting), so the
        dataset's metadata and staging catch up without waiting for the client to retry. The commit
        key keeps this exactly-once even if a client retries at the same moment."""
        cutoff = utcnow() - timedelta(seconds=self._commit_resume_after)
        for execution in self._streams.idle_executions(older_than=cutoff, state=ExecutionState.COMMITTING):
            try:
                stream = self._streams.get_stream(execution.stream_id)
                self._finish_commit(self._catalog.get_dataset(stream.dataset_id), execution)
                log.info("resumed a stalled commit", extra={"fields": {"execution": execution.id}})
            except Exception:
                log.exception(
                    "could not resume a stalled commit", extra={"fields": {"execution": execution.id}}
                )

    def _abort(self, execution_id: int, reason: str) -> bool:
        """Abort the execution if it is ACTIVE; True if this call did."""
        if not self._streams.transition(
            execution_id, from_states=(ExecutionState.ACTIVE,), to=ExecutionState.ABORTED, error=reason
        ):
            return False
        self._store.discard_execution(execution_id)
        log.info("execution aborted", extra={"fields": {"execution": execution_id, "reason": reason}})
        return True

    def _discard_replaced(self, replaced: Part | None) -> None:
        if replaced is not None and replaced.path:
            self._store.discard_file(replaced.path)
