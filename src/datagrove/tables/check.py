"""Whether a table's Iceberg metadata and its files agree: every file a snapshot references exists
with the size the metadata records, and which files under the table's location nothing references.
The files are listed through the store's ``Storage`` (one listing of the table's location, a local
directory or a prefix of a bucket), not looked up one by one.

``datagrove check`` (services/maintenance.py) runs it for every dataset and adds the catalog's side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datagrove.errors import DatagroveError, NotFound
from datagrove.tables.maintenance import References, list_files, stat_file, superseded_metadata
from datagrove.tables.storage import StoredObject
from datagrove.tables.store import TableStore


@dataclass
class TableCheck:
    """What one table's check found. ``problems`` are disagreements (a referenced file missing or of
    another size, metadata that cannot be read); ``unreferenced`` are files nothing references."""

    dataset_id: str
    snapshots: int = 0
    referenced: int = 0
    problems: list[str] = field(default_factory=list)
    unreferenced: list[StoredObject] = field(default_factory=list)


def check_table(store: TableStore, dataset_id: str) -> TableCheck:
    found = TableCheck(dataset_id)
    try:
        table = store.load_table(dataset_id)
    except NotFound:
        found.problems.append("the dataset has no Iceberg table")
        return found
    except Exception as exc:  # noqa: BLE001 - any failure to read the metadata is what we report
        found.problems.append(f"the table's metadata cannot be read: {exc}")
        return found
    found.snapshots = len(table.metadata.snapshots)
    try:
        referenced = References(table, store.storage).all_files()
    except Exception as exc:  # noqa: BLE001 - a manifest list or manifest that cannot be read
        found.problems.append(f"a manifest cannot be read: {exc}")
        return found
    found.referenced = len(referenced)
    try:
        stored = {f.uri: f for f in list_files(store.storage, table.location())}
    except DatagroveError as exc:  # a bucket that cannot be reached, a table outside this storage
        found.problems.append(f"the table's files cannot be listed: {exc}")
        return found
    for uri, size in sorted(referenced.items()):
        file = stored.get(uri) or _look_up(store, uri)
        if file is None:
            found.problems.append(f"missing file {uri}")
        elif size is not None and file.size != size:
            found.problems.append(f"file {uri} has {file.size} bytes, the metadata records {size}")
    history = superseded_metadata(table, store.storage)  # may be there or gone: neither is a disagreement
    found.unreferenced = sorted(
        (f for uri, f in stored.items() if uri not in referenced and uri not in history),
        key=lambda f: f.uri,
    )
    return found


def _look_up(store: TableStore, uri: str) -> StoredObject | None:
    """A referenced file the listing of the table's location lacks: maybe it lives elsewhere."""
    try:
        return stat_file(store.storage, uri)
    except DatagroveError:  # in no storage this server reaches
        return None
