"""A table's versions: its Iceberg snapshots as a dataset's history, reading one, restoring one.

Every commit Datagrove makes is one Iceberg metadata commit, but a commit that swaps all rows (a
REPLACE, a schema change) holds two snapshots: a DELETE of every file, then the APPEND of the new
ones. The DELETE was never current to any reader, so ``history`` folds it into the snapshot after
it: one version per commit, named by the snapshot that became current.

Who made a snapshot is read from its summary properties: the commit key of a stream execution
(``<ns>-e<execution id>``) or of a fold (``fold-<last append number>``), or ``MADE_BY_PROPERTY``,
which imports, schema changes and restores write (``<kind>`` or ``<kind>:<id>``) together with
``ACTOR_PROPERTY`` (the user id).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pyiceberg.io.pyarrow import parquet_file_to_data_file
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation
from pyiceberg.table.snapshots import Snapshot as IcebergSnapshot

from datagrove.tables.types import Column, column_type_of_iceberg

# The key that makes a commit exactly-once (``TableStore.commit_files``); store.py re-exports it.
COMMIT_KEY_PROPERTY = "datagrove.commit-key"
SCHEMA_KEY_PREFIX = "schema-"  # the commit key of a schema change's rewrite: schema-<uuid>
MADE_BY_PROPERTY = "datagrove.made-by"
ACTOR_PROPERTY = "datagrove.actor"

_EXECUTION_KEY = re.compile(r"[0-9]{20}-e([0-9]+)")
_FOLD_KEY = re.compile(r"fold-([0-9]+)")
_LEGACY_IMPORT_KEY = re.compile(r"[0-9a-f]{32}")  # imports before MADE_BY_PROPERTY: a bare uuid4


@dataclass(frozen=True)
class MadeBy:
    """What made a version: ``kind`` is import, execution, fold, schema or restore; ``id`` the
    execution id, the fold's last append number or the restored version (None for the others);
    ``user_id`` the user who asked, where the snapshot recorded it."""

    kind: str
    id: int | str | None = None
    user_id: int | None = None


@dataclass(frozen=True)
class TableVersion:
    snapshot_id: int
    created_at: datetime
    operation: str  # Iceberg's (append, overwrite, delete) or "replace" for a DELETE + APPEND commit
    rows_added: int
    rows_removed: int
    rows: int
    current: bool
    made_by: MadeBy | None


def made_by_properties(kind: str, *, made_id: object = None, user_id: int | None = None) -> dict[str, str]:
    """The snapshot properties that say who made a commit (``MadeBy``), for ``commit_files`` and
    ``change_schema``."""
    properties = {MADE_BY_PROPERTY: kind if made_id is None else f"{kind}:{made_id}"}
    if user_id is not None:
        properties[ACTOR_PROPERTY] = str(user_id)
    return properties


def history(table: Table) -> list[TableVersion]:
    """The table's versions, newest first (see the module docstring)."""
    snapshots = sorted(table.metadata.snapshots, key=lambda s: (s.sequence_number or 0, s.timestamp_ms))
    by_id = {s.snapshot_id: s for s in snapshots}
    current = table.metadata.current_snapshot_id
    versions: list[TableVersion] = []
    pending: list[IcebergSnapshot] = []  # DELETE snapshots folded into the next one
    for index, snapshot in enumerate(snapshots):
        following = snapshots[index + 1] if index + 1 < len(snapshots) else None
        if following is not None and _first_half(snapshot, following, by_id):
            pending.append(snapshot)
            continue
        group = [*pending, snapshot]
        pending = []
        operation = _operation(snapshot)
        if len(group) > 1:
            operation = "replace"
        versions.append(
            TableVersion(
                snapshot_id=snapshot.snapshot_id,
                created_at=datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC),
                operation=operation,
                rows_added=sum(_count(s, "added-records") for s in group),
                rows_removed=sum(_count(s, "deleted-records") for s in group),
                rows=_count(snapshot, "total-records"),
                current=snapshot.snapshot_id == current,
                made_by=_made_by(group, by_id),
            )
        )
    versions.reverse()
    return versions


def find(table: Table, snapshot_id: int) -> IcebergSnapshot | None:
    return table.metadata.snapshot_by_id(snapshot_id)


def files_of(table: Table, snapshot_id: int) -> list[str]:
    """The snapshot's data file URIs in insertion order (names sort in commit order)."""
    uris = [task.file.file_path for task in table.scan(snapshot_id=snapshot_id).plan_files()]
    return sorted(uris, key=os.path.basename)


def columns_of(table: Table, snapshot: IcebergSnapshot, order: Sequence[Column]) -> list[Column]:
    """The snapshot's columns as Domo columns. Iceberg keeps a schema per snapshot but not the Domo
    column order (a type change moves a column to the end of the Iceberg schema), so the columns
    come in ``order`` (the dataset's current order) where they still exist, then the others in the
    Iceberg schema's order."""
    schemas = {schema.schema_id: schema for schema in table.metadata.schemas}
    schema = schemas.get(snapshot.schema_id) if snapshot.schema_id is not None else None
    schema = schema or table.schema()
    found = [Column(field.name, column_type_of_iceberg(field.field_type)) for field in schema.fields]
    position = {column.name: index for index, column in enumerate(order)}
    return sorted(found, key=lambda c: (position.get(c.name, len(position)), found.index(c)))


def restore(
    table: Table,
    snapshot_id: int,
    *,
    snapshot_properties: Mapping[str, str],
    table_properties: Mapping[str, str],
    renewed: Mapping[str, str] | None = None,
) -> None:
    """Make the files of ``snapshot_id`` the table's files again as one new OVERWRITE snapshot:
    files the current snapshot has and the old one has not are deleted, the old one's files the
    current has not are added back, in the same metadata commit as ``table_properties``.

    Raises pyiceberg's ``CommitFailedException`` when another commit landed first (the caller
    retries on the newer table). The old snapshot's ``DataFile`` entries are reused as they are
    when the table's schema is still the one they were written under; otherwise their statistics
    name old field ids, so they are described again from the files under the current schema.
    ``renewed`` maps an old file to its copy carrying the current schema's field IDs (a column whose
    type changed and changed back has a new ID): the copy is added in its place.
    """
    old = _data_files(table, snapshot_id)
    current = _data_files(table, None)
    target = find(table, snapshot_id)
    same_schema = target is not None and target.schema_id == table.metadata.current_schema_id
    with table.transaction() as tx:
        if table_properties:
            tx.set_properties(dict(table_properties))
        with tx.update_snapshot(snapshot_properties=dict(snapshot_properties)).overwrite() as overwrite:
            for uri, data_file in current.items():
                if uri not in old:
                    overwrite.delete_data_file(data_file)
            for uri, data_file in old.items():
                if uri in current:
                    continue
                if renewed and uri in renewed:
                    data_file = parquet_file_to_data_file(table.io, tx.table_metadata, renewed[uri])
                elif not same_schema:
                    data_file = parquet_file_to_data_file(table.io, tx.table_metadata, uri)
                overwrite.append_data_file(data_file)


def _data_files(table: Table, snapshot_id: int | None) -> dict[str, DataFile]:
    if snapshot_id is None and table.current_snapshot() is None:
        return {}
    return {task.file.file_path: task.file for task in table.scan(snapshot_id=snapshot_id).plan_files()}


def _first_half(
    snapshot: IcebergSnapshot, following: IcebergSnapshot, by_id: Mapping[int, IcebergSnapshot]
) -> bool:
    """Whether ``snapshot`` is the DELETE half of a commit that ``following`` completes: the same
    commit key, or (schema changes made before they carried one) neither has a key, the DELETE
    already has the new schema and its parent had another."""
    if _operation(snapshot) != Operation.DELETE.value or following.parent_snapshot_id != snapshot.snapshot_id:
        return False
    key, next_key = _property(snapshot, COMMIT_KEY_PROPERTY), _property(following, COMMIT_KEY_PROPERTY)
    if key is not None or next_key is not None:
        return key == next_key
    parent = by_id.get(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id is not None else None
    return (
        parent is not None
        and parent.schema_id != snapshot.schema_id
        and following.schema_id == snapshot.schema_id
    )


def _made_by(group: Sequence[IcebergSnapshot], by_id: Mapping[int, IcebergSnapshot]) -> MadeBy | None:
    last = group[-1]
    user = _property(last, ACTOR_PROPERTY)
    user_id = int(user) if user is not None and user.isdigit() else None
    marked = _property(last, MADE_BY_PROPERTY)
    if marked:
        kind, _, ident = marked.partition(":")
        made_id: int | str | None = ident or None
        if made_id is not None and kind != "restore" and ident.isdigit():
            made_id = int(ident)
        return MadeBy(kind, made_id, user_id)
    key = _property(last, COMMIT_KEY_PROPERTY) or ""
    if match := _EXECUTION_KEY.fullmatch(key):
        return MadeBy("execution", int(match.group(1)))
    if match := _FOLD_KEY.fullmatch(key):
        return MadeBy("fold", int(match.group(1)))
    if _LEGACY_IMPORT_KEY.fullmatch(key):
        return MadeBy("import")
    if key.startswith(SCHEMA_KEY_PREFIX) or (not key and len(group) > 1):
        return MadeBy("schema")  # a schema change made before they carried MADE_BY_PROPERTY
    return None


def _operation(snapshot: IcebergSnapshot) -> str:
    return snapshot.summary.operation.value if snapshot.summary is not None else "unknown"


def _property(snapshot: IcebergSnapshot, name: str) -> str | None:
    if snapshot.summary is None:
        return None
    value = snapshot.summary.get(name)
    return None if value is None else str(value)


def _count(snapshot: IcebergSnapshot, name: str) -> int:
    value = _property(snapshot, name)
    return int(value) if value is not None and value.isdigit() else 0
