"""``TableStore``: one Apache Iceberg table per dataset, Parquet files in ``Storage``.

The files live in a local directory (the default) or an S3 bucket (``tables/storage.py``). Reads
hand DuckDB local paths only: a local file's own path, or a bucket object's copy in the
``FileCache`` (pinned while the read runs). Staged stream parts live where every node can reach
them: in the node's staging directory for local storage, under ``staging/`` in the bucket for S3
(``stage_file``), so a part uploaded to one node can be committed by another.

A write is one Iceberg transaction (APPEND adds files; REPLACE deletes every file and adds the
new ones), so a reader that resolves the table's current snapshot sees the old or the new data,
never a mix. Data files are named ``<commit-ns>-<commit-id>-<part>.parquet`` so that sorting
their names gives commit order and, within a commit, part order: export and ``SELECT *`` return
rows in insertion order.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import gzip
import io
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import NestedField

from datagrove import crashpoints
from datagrove.errors import Conflict, DatagroveError, NotFound, VersionGone
from datagrove.tables import field_ids as _field_ids
from datagrove.tables.batch_stream import stream_batches
from datagrove.tables.buffered import BufferedRows, after, write_buffered
from datagrove.tables.conform import conforming_select
from datagrove.tables.file_cache import FileCache
from datagrove.tables.json_rows import RowForm
from datagrove.tables.json_stream import JsonRows, stream_query
from datagrove.tables.parquet_layout import ParquetLayout
from datagrove.tables.sandbox import QueryLimits
from datagrove.tables.sql_names import quote_identifier, quote_literal
from datagrove.tables.storage import Storage
from datagrove.tables.types import Column, ColumnType, column_type_of_iceberg
from datagrove.tables.versions import COMMIT_KEY_PROPERTY, SCHEMA_KEY_PREFIX, TableVersion
from datagrove.tables.versions import columns_of as _version_columns
from datagrove.tables.versions import files_of as _version_files
from datagrove.tables.versions import find as _find_version
from datagrove.tables.versions import history as _version_history
from datagrove.tables.versions import restore as _restore_version

log = logging.getLogger("datagrove.tables")

NAMESPACE = "datagrove"
# A table property: the number of the last one-row append the table holds (services/appends.py).
# Folds and REPLACE commits set it in the same metadata commit as their snapshot; every other
# commit leaves it as it is, so it only ever grows.
APPENDED_THROUGH_PROPERTY = "datagrove.appended-through"
# pyiceberg retries a commit that lost a race by replaying its operations on the newer table, and a
# replayed REPLACE then misses the files that the winner added (seen: a fold's rows surviving a
# REPLACE). Every table is told not to; ``_commit_with_retry`` retries instead, deciding again
# each time on the newer table.
NO_LIBRARY_RETRIES = {"commit.retry.num-retries": "0"}
FILE_LIST_CACHE_SIZE = 256  # snapshots whose data-file list is kept (a few kB each)
COMMIT_ATTEMPTS = 10
READS = "reads"  # the staging subdirectory of read_area
PLACE_THREADS = 8  # staged files moved into a table in a bucket at once


@dataclass(frozen=True)
class CommitResult:
    """The table after a commit: its rows, and the last one-row append it holds."""

    total_rows: int
    appended_through: int = 0


@dataclass(frozen=True)
class Snapshot:
    """What one read of a table sees: its data files in insertion order, and its watermark."""

    files: tuple[str, ...]
    appended_through: int


@dataclass(frozen=True)
class PastVersion:
    """One version of a table as a read sees it: its files, and its columns as they were."""

    snapshot: Snapshot
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class ViewSource:
    """One dataset as a query over several sees it: the rows of ``columns`` that ``row_filter``
    allows (None: all), with the ``buffered`` rows its snapshot does not hold yet."""

    dataset_id: str
    columns: Sequence[Column]
    row_filter: str | None = None
    buffered: Sequence[BufferedRows] = ()


@dataclass(frozen=True)
class TableDocument:
    """A table as the Iceberg REST catalog hands it out: its current metadata file's location and
    contents (the JSON document itself, as written), and the table's location."""

    metadata_location: str
    metadata: dict[str, Any]
    location: str


class WatermarkMoved(DatagroveError):
    """A commit that expected the table's watermark to be one value found another (a REPLACE or
    another fold landed first); the caller starts over from the new table state."""


def table_name(dataset_id: str) -> str:
    return "ds_" + dataset_id.replace("-", "")


def iceberg_schema(columns: Sequence[Column]) -> Schema:
    return Schema(
        *(NestedField(i + 1, c.name, c.type.iceberg, required=False) for i, c in enumerate(columns))
    )


def warehouse_uri(storage: Storage) -> str:
    """Where tables are created: the data directory's warehouse, or ``warehouse/`` in the bucket."""
    return storage.root if storage.is_local else storage.uri("warehouse")


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme in ("file", "") else Path(uri)


def _is_uri(location: str) -> bool:
    return "://" in location


class TableStore:
    def __init__(
        self,
        *,
        catalog_url: str,
        warehouse_dir: Path,
        staging_dir: Path,
        threads: int = 2,
        parquet: ParquetLayout = ParquetLayout(),
        storage: Storage | None = None,
        file_cache: FileCache | None = None,
    ) -> None:
        """Tables in ``storage`` (default: the local ``warehouse_dir``); a bucket needs a
        ``file_cache`` for reads. ``staging_dir`` is always local (upload bodies, read areas)."""
        staging_dir.mkdir(parents=True, exist_ok=True)
        self._storage = storage or Storage.local(warehouse_dir)
        if not self._storage.is_local and file_cache is None:
            raise ValueError("object storage needs a file cache for reads")
        self._cache = file_cache
        self._staging_dir = staging_dir
        self._threads = threads
        self._parquet = parquet
        self._iceberg = SqlCatalog(
            "datagrove",
            uri=catalog_url,
            warehouse=warehouse_uri(self._storage),
            **self._storage.iceberg_properties(),
        )
        self._snapshots: collections.OrderedDict[str, Snapshot] = collections.OrderedDict()
        self._schemas: collections.OrderedDict[str, Schema] = collections.OrderedDict()
        self._files_lock = threading.Lock()
        self._iceberg.create_namespace_if_not_exists(NAMESPACE)

    @property
    def parquet_layout(self) -> ParquetLayout:
        """How this store's data files are laid out: whoever writes a file that it will commit
        (imports, stream parts, connector runs, folds) writes it so."""
        return self._parquet

    @property
    def storage(self) -> Storage:
        """Where the tables' files live: read or delete a data file by its URI through it."""
        return self._storage

    def field_ids(self, dataset_id: str, columns: Sequence[Column]) -> tuple[int, ...]:
        """The Iceberg field IDs of ``columns`` (by name) in the table's current schema: what a
        data file of these columns written for this table carries (``tables/field_ids.py``).

        Asked for every stream part, so the schema is cached by metadata location (one indexed
        catalog lookup, as ``snapshot`` does): a metadata file never changes once written."""
        location = self._metadata_location(dataset_id)
        with self._files_lock:
            schema = self._schemas.get(location)
        if schema is None:
            table = self._table(dataset_id)
            schema = table.schema()
            if table.metadata_location == location:  # not committed to in between
                with self._files_lock:
                    self._schemas[location] = schema
                    while len(self._schemas) > FILE_LIST_CACHE_SIZE:
                        self._schemas.popitem(last=False)
        return _field_ids.of_iceberg_schema(schema, columns)

    # --- lifecycle ------------------------------------------------------------------------------

    def create_table(self, dataset_id: str, columns: Sequence[Column]) -> None:
        self._iceberg.create_table(
            f"{NAMESPACE}.{table_name(dataset_id)}", iceberg_schema(columns), properties=NO_LIBRARY_RETRIES
        )

    def drop_table(self, dataset_id: str, *, delete_files: bool = True) -> str | None:
        """Drop the table and (unless told not to) delete its files; returns its directory, None
        when there was no such table (dropping is idempotent)."""
        try:
            location = self._table(dataset_id).location()
        except NoSuchTableError:
            return None
        with contextlib.suppress(NoSuchTableError):
            self._iceberg.drop_table(f"{NAMESPACE}.{table_name(dataset_id)}")
        if delete_files:
            self.delete_directory(location)
        return location

    def delete_directory(self, location: str) -> None:
        """Delete a dropped table's directory (``drop_table``'s answer) and everything in it."""
        self._storage.delete_tree(location)

    @contextlib.contextmanager
    def staging_area(self) -> Iterator[Path]:
        """A private directory for one upload's files, removed afterwards whatever happens."""
        path = self._staging_dir / uuid.uuid4().hex
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def read_area(self) -> Iterator[Path]:
        """A private directory for the files one read (a query, an export) needs while it runs,
        removed afterwards. Unlike ``staging_area`` it is out of reach of the reclaiming of abandoned
        uploads, which cannot tell a read that runs for hours from a dead one; what a process left
        here is removed when the next server starts (``clear_read_areas``)."""
        path = self._staging_dir / READS / uuid.uuid4().hex
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def local_dirs(self) -> list[Path]:
        """The local directories this store writes to: staging, and the tables for local storage
        (what a free-space check looks at)."""
        tables = self._storage.local_path(self._storage.root)
        return [self._staging_dir] + ([tables] if tables is not None else [])

    def clear_read_areas(self) -> None:
        """Remove what the reads of a server that ended left behind; for a server starting up only
        (a CLI command beside a running server must not)."""
        shutil.rmtree(self._staging_dir / READS, ignore_errors=True)

    def execution_dir(self, execution_id: int) -> Path:
        """Where the parts of one stream execution are written, as Parquet; ``stage_file`` then
        keeps each where its commit (on any node) finds it."""
        path = self._staging_dir / "executions" / str(execution_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def stage_file(self, execution_id: int, source: Path) -> str:
        """Keep ``source`` (a Parquet file in ``execution_dir(execution_id)``) for the execution's
        commit; returns its location, what ``commit_files`` takes and ``Part.path`` records: the
        local path itself for local storage, the object's URI in the bucket for S3 (the local file
        is then gone)."""
        if self._storage.is_local:
            return str(source)
        uri = self._storage.uri("staging", "executions", str(execution_id), source.name)
        self._storage.put(source, uri)
        return uri

    def discard_file(self, location: str) -> None:
        """Delete one staged file (a location from ``stage_file``); a missing one is fine."""
        if _is_uri(location):
            self._storage.delete(location)
        else:
            Path(location).unlink(missing_ok=True)

    def discard_execution(self, execution_id: int) -> None:
        shutil.rmtree(self._staging_dir / "executions" / str(execution_id), ignore_errors=True)
        if not self._storage.is_local:
            self._storage.delete_tree(self._storage.uri("staging", "executions", str(execution_id)))

    def reclaim_abandoned_uploads(self, *, idle_seconds: float) -> int:
        """Remove upload staging areas untouched for ``idle_seconds`` (left by a crashed process);
        returns how many were removed."""
        cutoff = time.time() - idle_seconds
        removed = 0
        for area in self._staging_dir.iterdir():
            if area.name in ("executions", READS) or not area.is_dir():
                continue
            newest = max((f.stat().st_mtime for f in area.iterdir()), default=area.stat().st_mtime)
            if newest < cutoff:
                shutil.rmtree(area, ignore_errors=True)
                removed += 1
        return removed

    def staged_execution_ids(self) -> list[int]:
        """Executions with staged files here or, for object storage, in the bucket (any node's)."""
        root = self._staging_dir / "executions"
        names = {p.name for p in root.iterdir()} if root.exists() else set()
        if not self._storage.is_local:
            listed = self._storage.list(self._storage.uri("staging", "executions"), recursive=False)
            names |= {uri.rstrip("/").rsplit("/", 1)[-1] for uri in listed}
        return sorted(int(name) for name in names if name.isdigit())

    # --- writes ---------------------------------------------------------------------------------

    def commit_files(
        self,
        dataset_id: str,
        files: Sequence[Path | str],
        *,
        replace: bool,
        commit_key: str | None = None,
        commit_ns: int | None = None,
        appended_through: int | None = None,
        expect_appended_through: int | None = None,
        snapshot_properties: Mapping[str, str] | None = None,
    ) -> CommitResult:
        """Move staged Parquet ``files`` (in order; local paths, or locations from ``stage_file``)
        into the table and commit them in one transaction.

        With ``replace`` the commit also removes every current file. The files must already match
        the table's schema (``csv_ingest`` writes them so).

        ``appended_through`` raises the table's watermark (``APPENDED_THROUGH_PROPERTY``) in the same
        commit: a fold says which buffered rows its files hold, a REPLACE which ones it discards.
        With ``expect_appended_through`` the commit is made only while the watermark is that value,
        else ``WatermarkMoved`` is raised and nothing is committed.

        ``commit_key`` makes the commit exactly-once: the snapshot carries it, and a commit whose key
        is already in the table's history does nothing. With the same ``commit_ns`` a retry after a
        crash finds files that the first attempt had already moved. On failure nothing becomes
        visible and the moved files are removed again.

        ``snapshot_properties`` go into the new snapshots' summaries (who made them, see
        ``tables/versions.py``).
        """
        table = self._table(dataset_id)
        commit_key = commit_key or uuid.uuid4().hex
        if _committed(table, commit_key):
            return self._commit_result(dataset_id)
        prefix = f"{commit_ns or time.time_ns():020d}-{commit_key}"
        placed = [self._data_uri(table, f"{prefix}-{index:06d}.parquet") for index in range(len(files))]
        sources = [str(source) for source in files]
        try:
            if self._storage.is_local or len(files) < 2:
                for source, target in zip(sources, placed, strict=True):
                    self._place(source, target)
            else:
                # Each move is a few requests to the store: overlap them (a commit of many parts).
                with concurrent.futures.ThreadPoolExecutor(min(PLACE_THREADS, len(files))) as pool:
                    list(pool.map(self._place, sources, placed))
            crashpoints.reached(crashpoints.COMMIT_FILES_PLACED)
            self._commit_with_retry(
                dataset_id,
                placed,
                replace=replace,
                commit_key=commit_key,
                appended_through=appended_through,
                expect_appended_through=expect_appended_through,
                snapshot_properties=snapshot_properties,
            )
        except BaseException:
            if not _committed(self._table(dataset_id), commit_key):
                self._unplace(sources, placed)
            raise
        return self._commit_result(dataset_id)

    def _unplace(self, sources: Sequence[str], placed: Sequence[str]) -> None:
        """After a commit that did not land: put each placed file back where it was staged, so a
        retried commit (a stream commit stays COMMITTING after a full disk or a storage outage)
        finds its parts again; deleting them here would leave it nothing to commit. A moved-back
        local file costs no space (a rename); a local source of a bucket's table is not moved back
        (its caller wrote it for this one attempt) and the placed object is deleted."""
        for source, target in zip(sources, placed, strict=True):
            try:
                if not self._storage.exists(target):
                    continue
                if _is_uri(source) or self._storage.is_local:
                    self._storage.move(target, source)
                else:
                    self._storage.delete(target)
            except Exception:  # noqa: BLE001 - the commit's own error is the one to raise
                log.exception("could not put a staged file back", extra={"fields": {"file": target}})

    def _data_uri(self, table: Table, name: str) -> str:
        return f"{table.location().rstrip('/')}/data/{name}"

    def _place(self, source: str, target: str) -> None:
        """Move one staged file to its place in the table. A retried commit (same names) finds the
        files the first attempt already placed: a missing source is fine when its target exists."""
        if _is_uri(source):
            if self._storage.exists(source):
                self._storage.move(source, target)
                return
        elif os.path.exists(source):
            self._storage.put(Path(source), target)
            return
        if not self._storage.exists(target):
            raise DatagroveError(f"staged file {os.path.basename(source)} is missing")

    def _commit_with_retry(
        self,
        dataset_id: str,
        uris: list[str],
        *,
        replace: bool,
        commit_key: str,
        appended_through: int | None,
        expect_appended_through: int | None,
        snapshot_properties: Mapping[str, str] | None = None,
    ) -> None:
        # Iceberg commits are optimistic: a concurrent writer makes ours fail, and we redo it on the
        # newer metadata, unless that newer metadata already holds our commit (a concurrent retry).
        properties = {**(snapshot_properties or {}), COMMIT_KEY_PROPERTY: commit_key}
        for attempt in range(COMMIT_ATTEMPTS):
            table = self._table_for_commit(dataset_id)
            if _committed(table, commit_key):
                return
            watermark = _appended_through(table)
            if expect_appended_through is not None and watermark != expect_appended_through:
                raise WatermarkMoved(
                    f"the table holds appended rows up to {watermark}, not {expect_appended_through}"
                )
            _check_field_ids(table, uris)
            try:
                with table.transaction() as tx:
                    if appended_through is not None and appended_through > watermark:
                        tx.set_properties({APPENDED_THROUGH_PROPERTY: str(appended_through)})
                    if replace and table.current_snapshot() is not None:
                        tx.delete(AlwaysTrue(), snapshot_properties=properties)
                    if uris:
                        tx.add_files(uris, snapshot_properties=properties, check_duplicate_files=False)
                return
            except CommitFailedException:
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))

    def change_schema(
        self,
        dataset_id: str,
        old: Sequence[Column],
        new: Sequence[Column],
        buffered: Sequence[BufferedRows] = (),
        snapshot_properties: Mapping[str, str] | None = None,
    ) -> CommitResult:
        """Give the table schema ``new``, keeping its rows: columns are matched by name; a column
        whose type changes is cast (values that do not convert become null); new columns are null.

        The ``buffered`` rows the table does not hold yet are rewritten with it, and the table's
        watermark moves past them. The rewrite of the data and the schema change are one Iceberg
        commit; a commit that lands first makes the rewrite start over on the newer table.
        """
        for attempt in range(COMMIT_ATTEMPTS):
            table = self._table_for_commit(dataset_id)
            locations = sorted(self._location(task.file.file_path) for task in table.scan().plan_files())
            pending = after(buffered, _appended_through(table))
            try:
                with self.staging_area() as area, contextlib.ExitStack() as pins:
                    files = self.local_files(locations, pins)
                    files += [
                        path.as_posix() for path in write_buffered(pending, old, area, parquet=self._parquet)
                    ]
                    self._rewrite_with_schema(
                        table,
                        files,
                        old,
                        new,
                        appended_through=pending[-1].last_seq if pending else None,
                        snapshot_properties=snapshot_properties,
                    )
                return self._commit_result(dataset_id)
            except CommitFailedException:
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _rewrite_with_schema(
        self,
        table: Table,
        files: Sequence[str],
        old: Sequence[Column],
        new: Sequence[Column],
        *,
        appended_through: int | None,
        snapshot_properties: Mapping[str, str] | None = None,
    ) -> None:
        old_by_name = {c.name: c for c in old}
        # One commit key for both snapshots (DELETE, APPEND): the version history folds them into one.
        properties = {
            **(snapshot_properties or {}),
            COMMIT_KEY_PROPERTY: SCHEMA_KEY_PREFIX + uuid.uuid4().hex,
        }
        with self.staging_area() as staging:
            rewritten: list[str] = []
            if files:
                target = staging / "rewrite.parquet"
                source = f"read_parquet([{', '.join(quote_literal(f) for f in files)}])"
                ids = _field_ids.duckdb_copy_option(new, _evolved_ids(table, old, new))
                with self._duckdb() as con:
                    con.execute(
                        f"COPY (SELECT {conforming_select(old, new)} FROM {source}) "
                        f"TO {quote_literal(str(target))} ({self._parquet.duckdb_copy_options()}{ids})"
                    )
                placed = self._data_uri(table, f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}-000000.parquet")
                self._storage.put(target, placed)
                rewritten.append(placed)
            try:
                with table.transaction() as tx:
                    if appended_through is not None:
                        tx.set_properties({APPENDED_THROUGH_PROPERTY: str(appended_through)})
                    with tx.update_schema() as update:
                        for column in old:
                            if column.name not in {c.name for c in new} or _type_changed(column, new):
                                update.delete_column(column.name)
                        for column in new:
                            previous = old_by_name.get(column.name)
                            if previous is None or previous.type != column.type:
                                update.add_column(column.name, column.type.iceberg)
                    if table.current_snapshot() is not None:
                        tx.delete(AlwaysTrue(), snapshot_properties=properties)
                    if rewritten:
                        tx.add_files(rewritten, snapshot_properties=properties, check_duplicate_files=False)
            except BaseException:
                for uri in rewritten:
                    self._storage.delete(uri)
                raise

    def table_state(self, dataset_id: str) -> CommitResult:
        """The current snapshot's row total and watermark (from metadata, without reading data)."""
        return self._commit_result(dataset_id)

    def _commit_result(self, dataset_id: str) -> CommitResult:
        table = self._table(dataset_id)
        snapshot = table.current_snapshot()
        records = snapshot.summary.get("total-records") if snapshot and snapshot.summary else None
        total = int(records) if records is not None else 0
        return CommitResult(total_rows=total, appended_through=_appended_through(table))

    # --- reads ----------------------------------------------------------------------------------

    def snapshot(self, dataset_id: str) -> Snapshot:
        """The current snapshot's data files (insertion order) and watermark: local paths for local
        storage, URIs for object storage (read them through ``local_files``).

        Planning a scan reads the table's metadata file and manifests (~5 ms, on every query). An
        Iceberg metadata file never changes once written, so what it says is cached by its location,
        which one indexed catalog lookup gives; a commit makes a new location, never a stale hit.
        """
        location = self._metadata_location(dataset_id)
        with self._files_lock:
            cached = self._snapshots.get(location)
            if cached is not None:
                self._snapshots.move_to_end(location)
                return cached
        table = self._table(dataset_id)
        if table.current_snapshot() is None:
            files: list[str] = []
        else:
            paths = [self._location(task.file.file_path) for task in table.scan().plan_files()]
            files = sorted(paths, key=lambda p: os.path.basename(p))
        found = Snapshot(tuple(files), _appended_through(table))
        if table.metadata_location == location:  # not committed to in between
            with self._files_lock:
                self._snapshots[location] = found
                while len(self._snapshots) > FILE_LIST_CACHE_SIZE:
                    self._snapshots.popitem(last=False)
        return found

    def current_files(self, dataset_id: str) -> list[str]:
        """The current snapshot's data files, in insertion order (as ``snapshot``)."""
        return list(self.snapshot(dataset_id).files)

    def _location(self, file_path: str) -> str:
        """How ``Snapshot.files`` names a data file: its local path, or its URI in a bucket."""
        return _local_path(file_path).as_posix() if self._storage.is_local else file_path

    def local_files(self, files: Sequence[str], holder: contextlib.ExitStack) -> list[str]:
        """Local paths DuckDB may read for ``files`` (from ``snapshot``), valid until ``holder``
        closes: the files themselves for local storage (no copy, no cost), else their pinned
        copies in the file cache."""
        if self._cache is None or self._storage.is_local or not files:
            return list(files)
        paths = self._cache.pin(files)
        holder.callback(self._cache.unpin, list(files))
        return paths

    def _metadata_location(self, dataset_id: str) -> str:
        with self._iceberg.engine.connect() as db:
            location = db.execute(
                sa.text(
                    "SELECT metadata_location FROM iceberg_tables "
                    "WHERE catalog_name = :catalog AND table_namespace = :namespace AND table_name = :name"
                ),
                {"catalog": self._iceberg.name, "namespace": NAMESPACE, "name": table_name(dataset_id)},
            ).scalar()
        if location is None:
            raise NotFound(f"dataset {dataset_id} has no table")
        return str(location)

    def view_sql(self, columns: Sequence[Column], files: Sequence[str], row_filter: str | None = None) -> str:
        """A SELECT of ``columns`` over ``files`` (no rows when there are none), keeping only the rows
        that ``row_filter`` (a predicate over the columns, e.g. a row-level policy) allows."""
        if not columns:
            return "SELECT NULL AS _empty WHERE false"
        if not files:
            casts = ", ".join(f"CAST(NULL AS {c.type.duckdb}) AS {quote_identifier(c.name)}" for c in columns)
            return f"SELECT {casts} WHERE false"
        names = ", ".join(quote_identifier(c.name) for c in columns)
        listed = ", ".join(quote_literal(f) for f in files)
        where = f" WHERE ({row_filter})" if row_filter is not None else ""
        return f"SELECT {names} FROM read_parquet([{listed}]){where}"

    def query(
        self,
        dataset_id: str,
        columns: Sequence[Column],
        sql: str,
        limits: QueryLimits,
        row_filter: str | None = None,
        buffered: Sequence[BufferedRows] = (),
        *,
        form: RowForm,
        at: Snapshot | None = None,
    ) -> JsonRows:
        """Start translated user ``sql`` in the sandbox over the current snapshot and the ``buffered``
        rows it does not hold yet; it sees only the view ``"dataset"`` and may read only those files.
        Its rows stream out of the returned ``JsonRows`` as JSON ``form``; the snapshot is the one
        resolved here.

        ``buffered`` must have been read from the append buffer *before* this call: a fold that lands
        in between then shows its rows once, in the snapshot, and never in neither.

        ``at`` reads that snapshot (an earlier version, ``version``) instead of the current one.
        """
        snapshot = at or self.snapshot(dataset_id)
        # The buffered rows' files must live as long as the query: closing it removes them.
        cleanup = contextlib.ExitStack()
        area = cleanup.enter_context(self.read_area())
        try:
            files = [
                *self.local_files(snapshot.files, cleanup),
                *self._buffered_files(snapshot, buffered, columns, area),
            ]
            rows = stream_query(
                sql, view_sql=self.view_sql(columns, files, row_filter), files=files, limits=limits, form=form
            )
        except BaseException:
            cleanup.close()
            raise
        rows.on_close(cleanup.close)
        return rows

    def table_and_buffered(
        self, dataset_id: str, columns: Sequence[Column], buffered: Sequence[BufferedRows] = ()
    ) -> tuple[Table, pa.Table | None]:
        """The dataset's Iceberg table as it is now, for another engine to read (the distributed
        query path), and the ``buffered`` rows its snapshot does not hold yet as one Arrow table of
        ``columns`` (None when there are none). ``buffered`` must have been read before this call
        (see ``query``)."""
        table = self._table(dataset_id)
        pending = after(buffered, _appended_through(table))
        if not pending:
            return table, None
        with self.read_area() as area:
            paths = write_buffered(pending, columns, area, parquet=self._parquet)
            rows = pa.concat_tables([pq.read_table(path) for path in paths])
        return table, rows

    def query_batches(
        self, sql: str, sources: Mapping[str, ViewSource], limits: QueryLimits
    ) -> pa.RecordBatchReader:
        """Start translated user ``sql`` in the sandbox over several datasets, each the view named by
        its key in ``sources`` over its current snapshot and buffered rows; its rows stream out of
        the returned reader as Arrow batches (see ``batch_stream.stream_batches``, which also says
        how errors come out). Each dataset's snapshot is resolved here, one after the other.

        Each source's ``buffered`` rows must have been read *before* this call (see ``query``).
        """
        # The buffered rows' files must live as long as the reader: releasing it removes them.
        cleanup = contextlib.ExitStack()
        area = cleanup.enter_context(self.read_area())
        try:
            views: dict[str, str] = {}
            files: list[str] = []
            for index, (name, source) in enumerate(sources.items()):
                snapshot = self.snapshot(source.dataset_id)
                own = area / str(index)  # each dataset's buffered files are named alike
                own.mkdir()
                read = [
                    *self.local_files(snapshot.files, cleanup),
                    *self._buffered_files(snapshot, source.buffered, source.columns, own),
                ]
                views[name] = self.view_sql(source.columns, read, source.row_filter)
                files.extend(read)
            return stream_batches(sql, views=views, files=files, limits=limits, on_close=cleanup.close)
        except BaseException:
            cleanup.close()
            raise

    def export_csv(
        self,
        dataset_id: str,
        columns: Sequence[Column],
        *,
        include_header: bool,
        row_filter: str | None = None,
        buffered: Sequence[BufferedRows] = (),
        at: Snapshot | None = None,
    ) -> Iterator[bytes]:
        """The dataset as CSV (UTF-8, nulls as empty fields, one format per column), in chunks.

        Runs our own SQL (never the user's) in a DuckDB connection that may read the table's files;
        the snapshot is resolved once, so a concurrent REPLACE cannot mix versions into one export.
        ``buffered`` and ``at`` as for ``query``.
        """
        snapshot = at or self.snapshot(dataset_id)
        # The buffered rows' files must outlive this call: the generator below owns their directory.
        cleanup = contextlib.ExitStack()
        area = cleanup.enter_context(self.read_area())
        try:
            files = [
                *self.local_files(snapshot.files, cleanup),
                *self._buffered_files(snapshot, buffered, columns, area),
            ]
        except BaseException:
            cleanup.close()
            raise

        def batches() -> Iterator[bytes]:
            with cleanup:
                yield from self._export_batches(
                    self.view_sql(columns, files, row_filter),
                    columns,
                    has_rows=bool(files),
                    include_header=include_header,
                )

        return batches()

    # --- versions (tables/versions.py) -----------------------------------------------------------

    def versions(self, dataset_id: str) -> list[TableVersion]:
        """The table's versions, newest first."""
        return _version_history(self._table(dataset_id))

    def version(self, dataset_id: str, snapshot_id: int, order: Sequence[Column]) -> PastVersion:
        """The files and columns of version ``snapshot_id`` (columns in ``order`` where they still
        exist, see ``versions.columns_of``); ``VersionGone`` when it is not in the table's history."""
        table = self._table(dataset_id)
        found = _find_version(table, snapshot_id)
        if found is None:
            raise _gone(snapshot_id)
        files = tuple(self._location(uri) for uri in _version_files(table, snapshot_id))
        return PastVersion(
            Snapshot(files, _appended_through(table)), tuple(_version_columns(table, found, order))
        )

    def restore_version(
        self,
        dataset_id: str,
        snapshot_id: int,
        *,
        appended_through: int,
        snapshot_properties: Mapping[str, str],
    ) -> CommitResult:
        """Make version ``snapshot_id``'s files current again as a new snapshot, in one commit that
        also raises the watermark to ``appended_through`` (the buffered one-row appends are
        discarded, as a REPLACE discards them). The caller checks that the schema still fits and
        holds the dataset's commit claim. ``VersionGone`` when the version is not in the history."""
        for attempt in range(COMMIT_ATTEMPTS):
            table = self._table_for_commit(dataset_id)
            if _find_version(table, snapshot_id) is None:
                raise _gone(snapshot_id)
            watermark = _appended_through(table)
            raised = (
                {APPENDED_THROUGH_PROPERTY: str(appended_through)} if appended_through > watermark else {}
            )
            renewed = self._renew_field_ids(table, snapshot_id)
            try:
                _restore_version(
                    table,
                    snapshot_id,
                    snapshot_properties=snapshot_properties,
                    table_properties=raised,
                    renewed=renewed,
                )
                return self._commit_result(dataset_id)
            except BaseException as exc:
                for uri in renewed.values():
                    self._storage.delete(uri)
                if not isinstance(exc, CommitFailedException) or attempt == COMMIT_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _renew_field_ids(self, table: Table, snapshot_id: int) -> dict[str, str]:
        """Copies, with the current schema's field IDs, of the files of version ``snapshot_id`` that
        a restore adds back and whose IDs are no longer the table's (a column whose type changed and
        changed back got a new ID): an engine reading by ID would see such a column as empty. Maps
        each old file to its copy, placed in the table's data directory beside it."""
        found = _find_version(table, snapshot_id)
        if found is None or found.schema_id == table.metadata.current_schema_id:
            return {}
        schema = table.schema()
        columns = [Column(f.name, column_type_of_iceberg(f.field_type)) for f in schema.fields]
        target = _field_ids.arrow_schema(columns, [f.field_id for f in schema.fields])
        wanted = dict(zip(target.names, _field_ids.of_arrow_schema(target), strict=True))
        current = (
            {task.file.file_path for task in table.scan().plan_files()} if table.current_snapshot() else set()
        )
        renewed: dict[str, str] = {}
        with self.staging_area() as area:
            try:
                for uri in _version_files(table, snapshot_id):
                    if uri in current:
                        continue
                    with table.io.new_input(uri).open() as stream:
                        rows = pq.read_table(stream)
                    have = dict(zip(rows.schema.names, _field_ids.of_arrow_schema(rows.schema), strict=True))
                    if all(have.get(name) in (None, wanted[name]) for name in wanted):
                        continue  # no IDs (the name mapping applies) or the right ones
                    local = area / f"{len(renewed):06d}.parquet"
                    pq.write_table(
                        rows.select(target.names).cast(target),
                        local,
                        compression=self._parquet.arrow_compression,
                        row_group_size=self._parquet.row_group_rows,
                    )
                    name = (
                        os.path.basename(uri).removesuffix(".parquet") + f"-ids{uuid.uuid4().hex[:8]}.parquet"
                    )
                    renewed[uri] = self._data_uri(table, name)
                    self._storage.put(local, renewed[uri])
            except BaseException:
                for placed in renewed.values():
                    self._storage.delete(placed)
                raise
        return renewed

    def _buffered_files(
        self, snapshot: Snapshot, buffered: Sequence[BufferedRows], columns: Sequence[Column], area: Path
    ) -> list[str]:
        return [
            path.as_posix()
            for path in write_buffered(
                after(buffered, snapshot.appended_through), columns, area, parquet=self._parquet
            )
        ]

    def _export_batches(
        self, view_sql: str, columns: Sequence[Column], *, has_rows: bool, include_header: bool
    ) -> Iterator[bytes]:
        names = [c.name for c in columns]
        if include_header and names:
            yield _csv_bytes(pa.table({n: pa.array([], pa.string()) for n in names}), header=True)
        if not names:
            return
        with self._duckdb() as con:
            con.execute(f"CREATE TEMP VIEW export_source AS {view_sql}")
            formats = _datetime_formats(con, columns) if has_rows else {}
            selects = ", ".join(_export_expression(c, formats) for c in columns)
            reader: pa.RecordBatchReader = con.sql(f"SELECT {selects} FROM export_source").to_arrow_reader(
                EXPORT_BATCH_ROWS
            )
            for batch in reader:
                if batch.num_rows:
                    yield _csv_bytes(pa.Table.from_batches([batch]).rename_columns(names), header=False)

    # --- maintenance (tables/maintenance.py, tables/check.py) ------------------------------------

    def load_table(self, dataset_id: str, *, for_commit: bool = False) -> Table:
        """The dataset's Iceberg table as its live metadata says now; ``for_commit``: ready for a
        commit (never replayed by pyiceberg, see ``NO_LIBRARY_RETRIES``)."""
        return self._table_for_commit(dataset_id) if for_commit else self._table(dataset_id)

    def table_dataset_ids(self) -> list[str]:
        """The datasets that have a table (by table name; dashes restored as in a UUID)."""
        found = []
        for identifier in self._iceberg.list_tables(NAMESPACE):
            name = identifier[-1]
            if name.startswith("ds_") and len(name) == 35:
                hexed = name[3:]
                found.append(f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}")
        return found

    def table_document(self, dataset_id: str) -> TableDocument:
        """The table's current metadata file, read as it was written (an Iceberg metadata file never
        changes once written, so it is the exact document every engine reads)."""
        table = self._table(dataset_id)
        with table.io.new_input(table.metadata_location).open() as stream:
            raw = stream.read()
        if raw[:2] == b"\x1f\x8b":  # a gzip-compressed metadata file (write.metadata.compression-codec)
            raw = gzip.decompress(raw)
        return TableDocument(table.metadata_location, json.loads(raw), table.location())

    # --- internals ------------------------------------------------------------------------------

    def _table_for_commit(self, dataset_id: str) -> Table:
        """The table, once told not to replay lost commits itself (``NO_LIBRARY_RETRIES``); a table
        made before that property existed gets it here, in a commit of its own (a commit of
        properties alone is never replayed)."""
        table = self._table(dataset_id)
        if all(table.properties.get(key) == value for key, value in NO_LIBRARY_RETRIES.items()):
            return table
        with contextlib.suppress(CommitFailedException), table.transaction() as tx:
            tx.set_properties(NO_LIBRARY_RETRIES)
        return self._table(dataset_id)

    def _table(self, dataset_id: str) -> Table:
        try:
            return self._iceberg.load_table(f"{NAMESPACE}.{table_name(dataset_id)}")
        except NoSuchTableError as exc:
            raise NotFound(f"dataset {dataset_id} has no table") from exc

    @contextlib.contextmanager
    def _duckdb(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"SET threads={int(self._threads)}")
            con.execute("SET python_enable_replacements=false")
            yield con
        finally:
            con.close()


def _evolved_ids(table: Table, old: Sequence[Column], new: Sequence[Column]) -> tuple[int, ...]:
    """The field IDs ``new`` will have once ``_rewrite_with_schema`` changed the table from
    ``old``: a column kept with its type keeps its ID; the others get the next unused IDs in the
    order they are added (as Iceberg's schema update numbers them). ``add_files`` in the same
    commit refuses a file whose IDs the new schema does not have, so a wrong guess fails loudly."""
    current = {field.name: field.field_id for field in table.schema().fields}
    kept = {c.name for c in old} & {c.name for c in new if not _type_changed(c, old)}
    next_id = table.metadata.last_column_id
    ids: list[int] = []
    for column in new:
        if column.name in kept and column.name in current:
            ids.append(current[column.name])
        else:
            next_id += 1
            ids.append(next_id)
    return tuple(ids)


def _check_field_ids(table: Table, uris: Sequence[str]) -> None:
    """Refuse data files whose field IDs are not the table's (``tables/field_ids.py``).

    Only a table whose IDs are no longer 1..n (its schema changed) is checked, by reading each
    file's footer: a file written for a table that never changed schema carries 1..n, and a file
    of other columns is refused by ``add_files`` itself. Files with no IDs (written before IDs
    were) are read through the name mapping and pass."""
    schema = table.schema()
    expected = {field.name: field.field_id for field in schema.fields}
    if [field.field_id for field in schema.fields] == list(range(1, len(schema.fields) + 1)):
        return
    for uri in uris:
        with table.io.new_input(uri).open() as stream:
            file_schema = pq.read_schema(stream)
        for name, found in zip(file_schema.names, _field_ids.of_arrow_schema(file_schema), strict=True):
            if found is not None and expected.get(name) != found:
                raise Conflict(
                    f"column {name!r} of a data file was written for an earlier schema of the table; "
                    "upload the data again"
                )


def _gone(snapshot_id: int) -> VersionGone:
    return VersionGone(
        f"version {snapshot_id} is not in the dataset's history: it never was, or it was expired",
        version=str(snapshot_id),
    )


def _appended_through(table: Table) -> int:
    return int(table.properties.get(APPENDED_THROUGH_PROPERTY, "0"))


def _committed(table: Table, commit_key: str) -> bool:
    """Whether a snapshot of ``table`` carries ``commit_key`` (its commit already landed)."""
    return any(
        snapshot.summary is not None and snapshot.summary.get(COMMIT_KEY_PROPERTY) == commit_key
        for snapshot in table.metadata.snapshots
    )


def _type_changed(column: Column, new: Sequence[Column]) -> bool:
    return any(c.name == column.name and c.type != column.type for c in new)


EXPORT_BATCH_ROWS = 64 * 1024


def _csv_bytes(table: pa.Table, *, header: bool) -> bytes:
    """RFC 4180 CSV of ``table``: strings quoted, nulls as empty fields, LF line ends."""
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=header, quoting_style="needed"))
    return buffer.getvalue()


def _datetime_formats(con: duckdb.DuckDBPyConnection, columns: Sequence[Column]) -> dict[str, str]:
    """One format per DATETIME column: with microseconds only if some value has them."""
    stamps = [c for c in columns if c.type is ColumnType.DATETIME]
    if not stamps:
        return {}
    checks = ", ".join(f"bool_or(epoch_us({quote_identifier(c.name)}) % 1000000 <> 0)" for c in stamps)
    rows = con.sql(f"SELECT {checks} FROM export_source").fetchall()
    flags = rows[0] if rows else tuple(False for _ in stamps)
    return {
        c.name: "%Y-%m-%dT%H:%M:%S.%f" if flag else "%Y-%m-%dT%H:%M:%S"
        for c, flag in zip(stamps, flags, strict=True)
    }


def _export_expression(column: Column, datetime_formats: dict[str, str]) -> str:
    name = quote_identifier(column.name)
    if column.type is ColumnType.DATETIME:
        return f"strftime({name}, {quote_literal(datetime_formats.get(column.name, '%Y-%m-%dT%H:%M:%S'))})"
    if column.type is ColumnType.DATE:
        return f"strftime({name}, '%Y-%m-%d')"
    if column.type is ColumnType.DECIMAL:
        # DECIMAL(38,10) prints ten fraction digits; '1.1000000000' reads better as '1.1'.
        return f"rtrim(rtrim(CAST({name} AS VARCHAR), '0'), '.')"
    return name
