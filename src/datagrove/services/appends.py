"""One-row appends (``POST /api/data/v3/datasources/{id}/uploads`` with ``{"values", "delimiter"}``),
acknowledged at thousands per second without a Parquet file or a snapshot per row.

Writing: requests wait in a queue; one writer thread takes whatever has queued up while it was busy
(a *group commit*), resolves each distinct credential and (actor, dataset) pair once through the
usual services, so revokes and access rules hold exactly as elsewhere, checks every row, and
stores each dataset's rows as one batch, numbered, in one catalog transaction with their activity
log entries. Only then are the requests answered: an acknowledged row is durable. A row the quick
check is not sure of (``csv_record.certainly_valid``) goes through the strict conversion on a small
pool of its own, so an odd or bad row never holds up the writer, and comes back checked.

Folding: a background loop folds a dataset's buffer into its Iceberg table once it holds enough
rows, bytes or age (settings): one Parquet file and one snapshot per fold, which records the number
of the last row it holds (the table's watermark). Reads take the table plus the buffered rows after
its watermark (``DatasetService.buffered_rows``), so a row is visible from its acknowledgement on,
once. A fold is claimed in the catalog (one node folds a dataset at a time) and is exactly-once: a
fold that crashes after its commit finds its rows below the watermark and does nothing again; one
that a REPLACE overtakes (``WatermarkMoved``) starts over on the new table.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from datagrove import crashpoints, metrics
from datagrove.catalog.appends import AppendCatalog, AuditRow, NewBatch
from datagrove.catalog.repository import Catalog, columns_to_json, utcnow
from datagrove.disk_space import translate_disk_full
from datagrove.domain import Actor, Dataset
from datagrove.errors import Conflict, DatagroveError, InsufficientStorage, NotFound
from datagrove.services.access import Action
from datagrove.services.auth import Authenticator, Credential
from datagrove.services.datasets import DatasetService
from datagrove.tables.buffered import after, write_buffered
from datagrove.tables.csv_record import (
    Field,
    certainly_valid,
    check_delimiter,
    encode_record,
    split_record,
    strictly_checked_line,
)
from datagrove.tables.store import TableStore, WatermarkMoved

log = logging.getLogger("datagrove.appends")
T = TypeVar("T")

MAX_GROUP_ROWS = 2000  # rows in one group commit: bounds the transaction and the wait of the last
STRICT_CHECK_THREADS = 2
MAX_STRICT_CHECKS = 3  # a row whose dataset's schema keeps changing under it gives up (409)
FOLD_ATTEMPTS = 5


@dataclass(frozen=True)
class AppendReceipt:
    """An acknowledged row: who appended it, and its number in the dataset's append order."""

    actor: Actor
    dataset_id: str
    seq: int


@dataclass(frozen=True)
class FoldSettings:
    rows: int  # fold once this many rows are buffered
    size: int  # ... or this many bytes of CSV
    seconds: float  # ... or the oldest buffered row is this old
    interval: float  # how often the background loop looks


@dataclass
class _Request:
    credential: Credential
    dataset_id: str
    values: str
    delimiter: object  # as the client sent it; checked with the row
    future: concurrent.futures.Future[AppendReceipt]
    started: bool = False  # its future is running: a cancel of the request no longer reaches it
    actor: Actor | None = None  # once the credential is resolved
    # After a strict check: the schema (as JSON) the row was checked against, and its line.
    checked: tuple[str, str] | None = None
    strict_checks: int = 0


@dataclass
class _DatasetRows:
    dataset: Dataset
    schema_json: str
    lines: list[str] = field(default_factory=list)
    requests: list[_Request] = field(default_factory=list)


class AppendService:
    def __init__(
        self,
        *,
        appends: AppendCatalog,
        catalog: Catalog,
        auth: Authenticator,
        datasets: DatasetService,
        store: TableStore,
        fold: FoldSettings,
    ) -> None:
        self._appends = appends
        self._catalog = catalog
        self._auth = auth
        self._datasets = datasets
        self._store = store
        self._fold = fold
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._strict_checks = concurrent.futures.ThreadPoolExecutor(
            STRICT_CHECK_THREADS, thread_name_prefix="append-check"
        )
        self._wake_folder = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer and the fold loop (the server's lifespan calls this), after releasing the
        commit claims that processes of this host left when they died."""
        released = self._datasets.release_dead_claims()
        if released:
            log.info("released commit claims of dead processes", extra={"fields": {"claims": released}})
        for target, name in ((self._write_forever, "append-writer"), (self._fold_forever, "append-fold")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Answer what is queued, then stop the threads (buffered rows stay buffered, durably)."""
        self._stopping.set()
        self._wake_folder.set()
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=30)
        self._strict_checks.shutdown(wait=False, cancel_futures=True)

    # --- appending ------------------------------------------------------------------------------

    def submit(
        self, *, credential: Credential, dataset_id: str, values: str, delimiter: object
    ) -> concurrent.futures.Future[AppendReceipt]:
        """Queue one row (``values``, fields separated by ``delimiter``, ``,`` if None) for the
        dataset. The future resolves once the row is durable, or fails with the error to answer
        (401, 404, 403, 400...)."""
        future: concurrent.futures.Future[AppendReceipt] = concurrent.futures.Future()
        if self._stopping.is_set():
            future.set_exception(Conflict("the server is shutting down; send the row again"))
            return future
        self._queue.put(_Request(credential, dataset_id, values, delimiter, future))
        return future

    def buffer(self) -> metrics.AppendBuffer:
        """What waits to be folded, in the whole catalog (for ``/metrics``)."""
        rows, oldest = self._appends.unfolded()
        age = 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
        return metrics.AppendBuffer(rows=rows, oldest_age_seconds=age)

    def queued(self) -> int:
        """Requests of this process waiting for their group commit."""
        return self._queue.qsize()

    def _write_forever(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._refuse_the_rest()
                return
            group = [first]
            while len(group) < MAX_GROUP_ROWS:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # seen again once this group is written
                    break
                group.append(item)
            started = time.monotonic()
            try:
                self._write(group)
                log.debug(
                    "group commit",
                    extra={
                        "fields": {"rows": len(group), "ms": round((time.monotonic() - started) * 1000, 2)}
                    },
                )
            except Exception as exc:
                log.exception("group commit failed", extra={"fields": {"rows": len(group)}})
                failure = exc if isinstance(exc, DatagroveError) else DatagroveError("append failed")
                for request in group:
                    if request.started and not request.future.done():
                        request.future.set_exception(_copy(failure))

    def _refuse_the_rest(self) -> None:
        """At shutdown: answer what is still queued (rows back from a strict check, late arrivals)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and (item.started or item.future.set_running_or_notify_cancel()):
                item.future.set_exception(Conflict("the server is shutting down; send the row again"))

    def _write(self, group: list[_Request]) -> None:
        actors: dict[Credential, Actor | DatagroveError] = {}
        targets: dict[tuple[Credential, str], Dataset | DatagroveError] = {}
        by_dataset: dict[str, _DatasetRows] = {}
        for request in group:
            if not request.started:
                # A request cancelled while it queued is dropped; one taken from here on is answered.
                if not request.future.set_running_or_notify_cancel():
                    continue
                request.started = True
            actor = actors.get(request.credential)
            if actor is None:
                actor = actors[request.credential] = _attempt(
                    functools.partial(self._auth.actor_for, request.credential)
                )
            if isinstance(actor, DatagroveError):
                request.future.set_exception(_copy(actor))
                continue
            request.actor = actor
            key = (request.credential, request.dataset_id)
            dataset = targets.get(key)
            if dataset is None:
                dataset = targets[key] = _attempt(
                    functools.partial(
                        self._datasets.get, actor=actor, dataset_id=request.dataset_id, action=Action.EDIT
                    )
                )
            if isinstance(dataset, DatagroveError):
                request.future.set_exception(_copy(dataset))
                continue
            rows = by_dataset.get(dataset.id)
            if rows is None:
                rows = by_dataset[dataset.id] = _DatasetRows(dataset, columns_to_json(dataset.columns))
            line = self._checked_line(request, rows)
            if line is not None:
                rows.lines.append(line)
                rows.requests.append(request)
        self._store_rows(list(by_dataset.values()))

    def _checked_line(self, request: _Request, rows: _DatasetRows) -> str | None:
        """The row's canonical line if it is certainly valid for the dataset's current schema; else
        None, having answered the request (a bad record) or sent it for a strict check."""
        if request.checked is not None:
            schema_json, line = request.checked
            if schema_json == rows.schema_json:
                return line
        try:
            fields = split_record(request.values, check_delimiter(request.delimiter))
        except DatagroveError as exc:
            request.future.set_exception(exc)
            return None
        if fields is not None and certainly_valid(fields, rows.dataset.columns):
            return encode_record(fields)
        if request.strict_checks >= MAX_STRICT_CHECKS:
            request.future.set_exception(Conflict("the dataset's schema kept changing; send the row again"))
            return None
        request.strict_checks += 1
        self._strict_checks.submit(self._check_strictly, request, rows.dataset, rows.schema_json, fields)
        return None

    def _check_strictly(
        self, request: _Request, dataset: Dataset, schema_json: str, fields: list[Field] | None
    ) -> None:
        """Read the row with the strict conversion (``fields`` None: split it too); queue it again,
        checked, if it converts, else answer the problem."""
        try:
            with self._store.staging_area() as area:
                line = strictly_checked_line(request.values, fields, dataset.columns, area)
            request.checked = (schema_json, line)
            self._queue.put(request)
        except DatagroveError as exc:
            request.future.set_exception(exc)
        except Exception:
            log.exception("strict check of an appended row failed")
            request.future.set_exception(DatagroveError("append failed"))

    def _store_rows(self, groups: list[_DatasetRows]) -> None:
        groups = [rows for rows in groups if rows.lines]
        while groups:
            batches = [
                NewBatch(rows.dataset.id, len(rows.lines), rows.schema_json, "".join(rows.lines))
                for rows in groups
            ]
            try:
                numbers = self._appends.store_batches(batches, _audit_rows(groups))
            except KeyError as gone:  # deleted since it was looked up: nothing was stored
                for rows in groups:
                    if rows.dataset.id == gone.args[0]:
                        for request in rows.requests:
                            request.future.set_exception(
                                NotFound(f"dataset {rows.dataset.id} does not exist")
                            )
                groups = [rows for rows in groups if rows.dataset.id != gone.args[0]]
                continue
            crashpoints.reached(crashpoints.APPEND_STORED)
            metrics.INGESTED_BYTES.labels("append").inc(sum(len(batch.csv.encode()) for batch in batches))
            for rows in groups:
                first = numbers[rows.dataset.id] - len(rows.lines) + 1
                for offset, request in enumerate(rows.requests):
                    assert request.actor is not None
                    request.future.set_result(AppendReceipt(request.actor, rows.dataset.id, first + offset))
            return

    # --- folding --------------------------------------------------------------------------------

    def _fold_forever(self) -> None:
        while not self._stopping.is_set():
            self._wake_folder.wait(self._fold.interval)
            self._wake_folder.clear()
            if self._stopping.is_set():
                return
            try:
                self.fold_due()
            except Exception:
                log.exception("folding the append buffer failed; will try again")

    def fold_due(self) -> int:
        """Fold every dataset whose buffer is due (rows, bytes or age); returns rows folded."""
        due = self._appends.due_for_fold(
            rows=self._fold.rows,
            size=self._fold.size,
            older_than=utcnow() - timedelta(seconds=self._fold.seconds),
        )
        folded = 0
        for dataset_id in due:
            try:
                rows = self.fold(dataset_id)
            except InsufficientStorage:
                # The rows stay buffered (durable, and read from there); the next round tries again.
                metrics.job_ended("append_fold", "failure")
                log.warning(
                    "folding a dataset's append buffer waits for disk space",
                    extra={"fields": {"dataset": dataset_id}},
                )
                continue
            except Exception:  # one dataset's failure must not hold up the others' folds
                metrics.job_ended("append_fold", "failure")
                log.exception(
                    "folding a dataset's append buffer failed", extra={"fields": {"dataset": dataset_id}}
                )
                continue
            if rows:
                metrics.job_ended("append_fold", "success")
            folded += rows
        return folded

    def fold(self, dataset_id: str) -> int:
        """Fold the dataset's buffered rows into its table as one Parquet file and one snapshot;
        returns how many rows. Does nothing while another commit to the dataset holds its claim (the
        next round folds)."""
        with self._datasets.commit_claim(dataset_id, wait=False) as claimed:
            if not claimed:
                return 0
            for _ in range(FOLD_ATTEMPTS):
                try:
                    return self._fold_once(dataset_id)
                except WatermarkMoved:
                    continue  # a commit of another node whose claim ran out landed first: fold what is left
            return 0

    def _fold_once(self, dataset_id: str) -> int:
        started = time.monotonic()
        try:
            dataset = self._catalog.get_dataset(dataset_id)
        except NotFound:
            return 0
        watermark = self._store.table_state(dataset_id).appended_through
        batches = after(self._datasets.buffered_rows(dataset_id), watermark)
        if not batches:
            self._datasets.record_data_change(dataset_id)  # forget batches a REPLACE discarded
            return 0
        last_seq = batches[-1].last_seq
        # A fold cut short by a full disk commits nothing (its staging goes, the buffer stays).
        with translate_disk_full("folding the append buffer"), self._store.staging_area() as area:
            files = write_buffered(
                batches,
                dataset.columns,
                area,
                parquet=self._store.parquet_layout,
                field_ids=self._store.field_ids(dataset_id, dataset.columns),
            )
            crashpoints.reached(crashpoints.FOLD_WRITTEN)
            try:
                with metrics.committing("fold"):
                    self._store.commit_files(
                        dataset_id,
                        files,
                        replace=False,
                        commit_key=f"fold-{last_seq}",
                        appended_through=last_seq,
                        expect_appended_through=watermark,
                    )
            except ValueError as exc:  # pyiceberg: the schema changed since the rows were written
                raise WatermarkMoved(str(exc)) from exc
        crashpoints.reached(crashpoints.FOLD_COMMITTED)
        self._datasets.record_data_change(dataset_id)
        rows = last_seq - watermark
        log.info(
            "append buffer folded",
            extra={
                "fields": {
                    "dataset": dataset_id,
                    "rows": rows,
                    "batches": len(batches),
                    "through": last_seq,
                    "ms": round((time.monotonic() - started) * 1000, 1),
                }
            },
        )
        return rows


def _attempt(call: Callable[[], T]) -> T | DatagroveError:
    """``call()``, or the ``DatagroveError`` it raised (answered to every request it concerns)."""
    try:
        return call()
    except DatagroveError as exc:
        return exc


def _copy(exc: DatagroveError) -> DatagroveError:
    """A fresh error like ``exc``: each request raises its own, so tracebacks do not pile up on one."""
    return type(exc)(exc.message, **exc.details)


def _audit_rows(groups: list[_DatasetRows]) -> list[AuditRow]:
    """One activity log entry per actor and dataset of a group commit."""
    entries: list[AuditRow] = []
    for rows in groups:
        per_actor: dict[int, tuple[Actor, int]] = {}
        for request in rows.requests:
            assert request.actor is not None
            seen = per_actor.get(request.actor.user.id)
            per_actor[request.actor.user.id] = (request.actor, (seen[1] if seen else 0) + 1)
        for actor, count in per_actor.values():
            entries.append(
                AuditRow(
                    actor_id=actor.user.id,
                    actor_name=actor.user.name,
                    action="dataset.append",
                    object_type="DATASET",
                    object_id=rows.dataset.id,
                    object_name=rows.dataset.name,
                    detail=f"{count} row{'s' if count != 1 else ''}",
                )
            )
    return entries
