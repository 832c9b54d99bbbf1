"""Table maintenance on the Iceberg side: which snapshots expire and which files they leave, the
orphan files no snapshot references, and compaction of small data files into one atomic commit.

Deciding *when* a file may go (grace periods, safety ages, claims) is the caller's business
(``services/maintenance.py``); this module says which files are referenced, by what, and does the
Iceberg commits. Every file is reached by URI through ``Storage`` (the few functions under "file
access" below), so a table in the data directory and one in an S3 bucket are maintained by the same
code.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import parquet_file_to_data_file
from pyiceberg.table import Table
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Snapshot

from datagrove import crashpoints
from datagrove.errors import Conflict
from datagrove.tables.csv_canonical import arrow_writer
from datagrove.tables.field_ids import arrow_schema, of_iceberg_schema
from datagrove.tables.parquet_layout import ParquetLayout
from datagrove.tables.storage import Storage, StoredObject
from datagrove.tables.store import COMMIT_ATTEMPTS, COMMIT_KEY_PROPERTY, TableStore, _local_path
from datagrove.tables.types import Column

# Bytes one compaction rewrites at most (the rest waits for the next round): it runs under the
# dataset's commit claim, and a rewrite that outlasts the claim is lost to the next commit.
COMPACTION_MAX_BYTES = 1024**3
OPERATION_PROPERTY = "datagrove.operation"


# --- file access (through ``Storage``: a local directory and a bucket alike) ---------------------


def normal_uri(storage: Storage, uri: str) -> str:
    """One spelling per file, so that URIs from the metadata and from a listing compare equal."""
    if storage.is_local:
        return _local_path(uri).resolve().as_uri()
    parsed = urlparse(uri)
    return f"s3://{parsed.netloc}{parsed.path}" if parsed.scheme == "s3a" else uri


def stat_file(storage: Storage, uri: str) -> StoredObject | None:
    """The file's size and modification (placing) time, None when it does not exist."""
    found = storage.stat(uri)
    return None if found is None else StoredObject(normal_uri(storage, uri), found.size, found.modified)


def list_files(storage: Storage, root_uri: str) -> list[StoredObject]:
    """Every file under ``root_uri`` (recursively), with its size and modification time: on S3 the
    object's Last-Modified, which is when it was placed (objects are written once)."""
    return [
        StoredObject(normal_uri(storage, found.uri), found.size, found.modified)
        for found in storage.objects(root_uri)
    ]


def delete_file(storage: Storage, uri: str) -> None:
    """Delete the file; a file already gone is fine. Local copies that other nodes' file caches hold
    of a deleted object stay until their LRU evicts them: objects never change, so they are never
    wrong, and no current snapshot names them any more."""
    storage.delete(uri)


# --- what the metadata references ---------------------------------------------------------------


@dataclass(frozen=True)
class DataFile:
    uri: str
    size: int
    rows: int


class References:
    """The files that snapshots of one table reference, read from its manifests once each."""

    def __init__(self, table: Table, storage: Storage) -> None:
        self.table = table
        self._storage = storage
        self._manifest_files: dict[str, tuple[DataFile, ...]] = {}

    def data_files(self, snapshot: Snapshot) -> tuple[DataFile, ...]:
        """The live data files of ``snapshot`` (those its manifests add or keep)."""
        found: list[DataFile] = []
        for manifest in snapshot.manifests(self.table.io):
            if manifest.manifest_path not in self._manifest_files:
                self._manifest_files[manifest.manifest_path] = tuple(
                    DataFile(
                        normal_uri(self._storage, entry.data_file.file_path),
                        entry.data_file.file_size_in_bytes,
                        entry.data_file.record_count,
                    )
                    for entry in manifest.fetch_manifest_entry(self.table.io, discard_deleted=True)
                )
            found.extend(self._manifest_files[manifest.manifest_path])
        return tuple(found)

    def files(self, snapshots: Iterable[Snapshot]) -> dict[str, int | None]:
        """Every file ``snapshots`` need (manifest lists, manifests, data files): URI -> the size the
        metadata records for it (None where it records none)."""
        found: dict[str, int | None] = {}
        for snapshot in snapshots:
            found[normal_uri(self._storage, snapshot.manifest_list)] = None
            for manifest in snapshot.manifests(self.table.io):
                found[normal_uri(self._storage, manifest.manifest_path)] = manifest.manifest_length
            for data in self.data_files(snapshot):
                found[data.uri] = data.size
        return found

    def all_files(self) -> dict[str, int | None]:
        """Every file the table's current metadata needs: its own metadata file and every file of
        every snapshot it still holds."""
        found = self.files(self.table.metadata.snapshots)
        found[normal_uri(self._storage, self.table.metadata_location)] = None
        return found


def superseded_metadata(table: Table, storage: Storage) -> set[str]:
    """The table's earlier metadata files that its metadata log still names: no read loads them
    (a read loads the current one, once, when it starts); the expiry deletes them after the grace
    period like other files it leaves, and a file the log names may be gone."""
    current = normal_uri(storage, table.metadata_location)
    return {normal_uri(storage, e.metadata_file) for e in table.metadata.metadata_log} - {current}


def referenced_files(store: TableStore, dataset_id: str) -> dict[str, int | None]:
    """Every file the table's live metadata references (see ``References.all_files``)."""
    return References(store.load_table(dataset_id), store.storage).all_files()


def table_root(store: TableStore, dataset_id: str) -> str:
    return store.load_table(dataset_id).location()


# --- expiry -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryPlan:
    """Snapshots that may expire, and the files that only they (or metadata no longer current)
    reference: deletable once no read can still be using them."""

    snapshot_ids: tuple[int, ...]
    kept: int
    unreferenced: tuple[str, ...]


def plan_expiry(
    store: TableStore,
    dataset_id: str,
    *,
    keep_last: int,
    keep_since: datetime,
    keep_commit_keys: Set[str] = frozenset(),
) -> ExpiryPlan:
    """Which snapshots expire when the newest ``keep_last`` and every one made at or after
    ``keep_since`` are kept (a snapshot goes only when both rules let it go). The current snapshot,
    any branch or tag head, and the snapshots of ``keep_commit_keys`` are always kept: a commit
    whose caller has not seen it finish is retried, and only its snapshot in the history makes
    that retry do nothing (``TableStore.commit_files``)."""
    table = store.load_table(dataset_id)
    snapshots = sorted(table.metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    protected = {
        ref.snapshot_id
        for ref in table.metadata.refs.values()
        if ref.snapshot_ref_type in (SnapshotRefType.BRANCH, SnapshotRefType.TAG)
    }
    newest = {s.snapshot_id for s in snapshots[-keep_last:]} if keep_last > 0 else set()
    since_ms = int(keep_since.timestamp() * 1000)
    expiring = [
        s
        for s in snapshots
        if s.snapshot_id not in protected
        and s.snapshot_id not in newest
        and s.timestamp_ms < since_ms
        and (s.summary is None or s.summary.get(COMMIT_KEY_PROPERTY) not in keep_commit_keys)
    ]
    kept = [s for s in snapshots if s not in expiring]
    references = References(table, store.storage)
    still_needed = references.files(kept)
    unreferenced = [uri for uri in references.files(expiring) if uri not in still_needed]
    # The superseded metadata files still there: a listing per directory, not a request per file.
    superseded = superseded_metadata(table, store.storage)
    present = {
        f.uri
        for directory in {uri.rsplit("/", 1)[0] for uri in superseded}
        for f in list_files(store.storage, directory)
    }
    unreferenced.extend(uri for uri in sorted(superseded) if uri in present)
    return ExpiryPlan(tuple(s.snapshot_id for s in expiring), len(kept), tuple(unreferenced))


def expire_snapshots(store: TableStore, dataset_id: str, snapshot_ids: Sequence[int]) -> None:
    """Remove ``snapshot_ids`` from the table's metadata (their files stay; see ``plan_expiry``).
    Ids already gone are skipped; a concurrent commit makes it try again on the newer metadata."""
    for attempt in range(COMMIT_ATTEMPTS):
        table = store.load_table(dataset_id, for_commit=True)
        present = {s.snapshot_id for s in table.metadata.snapshots}
        wanted = [i for i in snapshot_ids if i in present and i != table.metadata.current_snapshot_id]
        if not wanted:
            return
        try:
            table.maintenance.expire_snapshots().by_ids(wanted).commit()
            return
        except CommitFailedException as exc:
            if attempt == COMMIT_ATTEMPTS - 1:
                raise Conflict("the table kept changing while its snapshots were expired") from exc
            time.sleep(0.01 * (attempt + 1))


# --- orphans ------------------------------------------------------------------------------------


def unreferenced_files(store: TableStore, dataset_id: str) -> list[StoredObject]:
    """Files under the table's location that its live metadata neither references nor names as
    superseded metadata (orphans of a crashed commit, and files of expired snapshots not yet
    deleted), oldest first."""
    table = store.load_table(dataset_id)
    referenced = References(table, store.storage).all_files() | dict.fromkeys(
        superseded_metadata(table, store.storage)
    )
    found = [f for f in list_files(store.storage, table.location()) if f.uri not in referenced]
    return sorted(found, key=lambda f: f.modified)


# --- compaction ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompactionPlan:
    """The current snapshot's small files, grouped into the files that will replace them."""

    files: int  # data files in the current snapshot
    groups: tuple[tuple[DataFile, ...], ...]
    snapshot_id: int | None = None  # the snapshot the plan was made on

    @property
    def small_files(self) -> int:
        return sum(len(g) for g in self.groups)


def plan_compaction(
    store: TableStore, dataset_id: str, *, target_bytes: int, min_small_files: int
) -> CompactionPlan:
    """The current snapshot's files below half of ``target_bytes``, in insertion order, grouped so
    that each group's files add up to at most ``target_bytes`` (and all groups to about
    ``COMPACTION_MAX_BYTES``) — or no groups when there are no more than ``min_small_files`` of them
    (not worth a rewrite)."""
    table = store.load_table(dataset_id)
    snapshot = table.current_snapshot()
    if snapshot is None:
        return CompactionPlan(0, ())
    data = sorted(References(table, store.storage).data_files(snapshot), key=lambda f: _name(f.uri))
    small = [f for f in data if f.size < target_bytes // 2]
    if len(small) <= min_small_files:
        return CompactionPlan(len(data), ())
    groups: list[list[DataFile]] = [[]]
    for file in small:
        if groups[-1] and sum(f.size for f in groups[-1]) + file.size > target_bytes:
            groups.append([])
        groups[-1].append(file)
    chosen: list[tuple[DataFile, ...]] = []
    budget = COMPACTION_MAX_BYTES
    for group in groups:
        size = sum(f.size for f in group)
        if len(group) > 1 and (size <= budget or not chosen):  # one file would be rewritten as it is
            chosen.append(tuple(group))
            budget -= size
    return CompactionPlan(len(data), tuple(chosen), snapshot.snapshot_id)


def compact(
    store: TableStore, dataset_id: str, plan: CompactionPlan, columns: Sequence[Column], *, staging: Path
) -> int:
    """Rewrite each group of ``plan`` into one file (rows in insertion order, the dataset's Arrow
    schema) and replace the groups' files by them in ONE Iceberg commit that changes no row and
    leaves the table's properties (its watermark) as they are. Returns the number of files written.

    Each file is written in the local ``staging`` directory and then placed in the table's data
    location through the store's ``Storage`` (a rename locally, an upload to a bucket), as every
    writer's files are; the commit then names them, or a crash leaves them to the orphan sweep.
    The commit is made only on the snapshot the plan was made from: if another commit landed in
    between, ``Conflict`` is raised and the placed files are removed (the caller holds the dataset's
    commit claim, so that takes a claim that ran out)."""
    if not plan.groups:
        return 0
    storage = store.storage
    table = store.load_table(dataset_id, for_commit=True)
    if table.metadata.current_snapshot_id != plan.snapshot_id:
        raise Conflict("the table changed since the compaction was planned; the next round compacts it")
    schema = arrow_schema(columns, of_iceberg_schema(table.schema(), columns))
    data_dir = f"{table.location().rstrip('/')}/data"
    key = f"compact-{uuid.uuid4().hex[:12]}"
    placed: list[str] = []
    try:
        for index, group in enumerate(plan.groups):
            written = staging / f"{index:06d}.parquet"
            _rewrite(group, written, schema, store.parquet_layout, storage)
            # Named after the group's first file: sorting names still gives insertion order.
            prefix = _name(group[0].uri).split("-", 1)[0]
            prefix = prefix if prefix.isdigit() else f"{time.time_ns():020d}"
            target = f"{data_dir}/{prefix}-{key}-{index:06d}.parquet"
            placed.append(target)  # before the upload: a half-uploaded object is removed too
            storage.put(written, target)
        crashpoints.reached(crashpoints.COMPACTION_PLACED)
        removed = {f.uri for group in plan.groups for f in group}
        snapshot = table.current_snapshot()
        assert snapshot is not None
        live = {
            normal_uri(storage, entry.data_file.file_path): entry.data_file
            for manifest in snapshot.manifests(table.io)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
        }
        properties = {COMMIT_KEY_PROPERTY: key, OPERATION_PROPERTY: "compaction"}
        with (
            table.transaction() as tx,
            tx.update_snapshot(snapshot_properties=properties).overwrite() as rewrite,
        ):
            for uri in removed:
                rewrite.delete_data_file(live[uri])
            for uri in placed:
                rewrite.append_data_file(parquet_file_to_data_file(table.io, table.metadata, uri))
    except BaseException as exc:
        for uri in placed:
            storage.delete(uri)
        if isinstance(exc, CommitFailedException):
            raise Conflict("another commit landed during the compaction; the next round compacts it") from exc
        raise
    return len(placed)


def _name(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _rewrite(
    group: Sequence[DataFile], target: Path, schema: pa.Schema, layout: ParquetLayout, storage: Storage
) -> None:
    """Copy the rows of ``group`` (in order) into the local Parquet file ``target`` of the store's
    layout (codec, row groups, dictionaries), a batch at a time: compaction also moves older files
    to it. Files in a bucket are read in ranges, row group by row group, not downloaded whole."""
    writer: pq.ParquetWriter | None = None
    try:
        for file in group:
            with storage.open(file.uri) as source:
                for batch in pq.ParquetFile(source).iter_batches(layout.row_group_rows):
                    rows = pa.Table.from_batches([batch]).select(schema.names).cast(schema)
                    if writer is None:
                        writer = arrow_writer(target, schema, layout, first=rows)
                    writer.write_table(rows, row_group_size=layout.row_group_rows)
        if writer is None:
            writer = arrow_writer(target, schema, layout, first=None)
    finally:
        if writer is not None:
            writer.close()
