"""Whether a table's Iceberg metadata and its files agree: every file a snapshot references exists
with the size the metadata records, and which files under the table's location nothing references.

``datagrove check`` (services/maintenance.py) runs it for every dataset and adds the catalog's side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datagrove.errors import NotFound
from datagrove.tables.maintenance import References, StoredFile, list_files, stat_file, superseded_metadata
from datagrove.tables.store import TableStore


@dataclass
class TableCheck:
    """What one table's check found. ``problems`` are disagreements (a referenced file missing or of
    another size, metadata that cannot be read); ``unreferenced`` are files nothing references."""

    dataset_id: str
    snapshots: int = 0
    referenced: int = 0
    problems: list[str] = field(default_factory=list)
    unreferenced: list[StoredFile] = field(default_factory=list)


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
        referenced = References(table).all_files()
    except Exception as exc:  # noqa: BLE001 - a manifest list or manifest that cannot be read
        found.problems.append(f"a manifest cannot be read: {exc}")
        return found
    found.referenced = len(referenced)
    for uri, size in sorted(referenced.items()):
        stored = stat_file(uri)
        if stored is None:
            found.problems.append(f"missing file {uri}")
        elif size is not None and stored.size != size:
            found.problems.append(f"file {uri} has {stored.size} bytes, the metadata records {size}")
    history = superseded_metadata(table)  # may be there or gone: neither is a disagreement
    found.unreferenced = sorted(
        (f for f in list_files(table.location()) if f.uri not in referenced and f.uri not in history),
        key=lambda f: f.uri,
    )
    return found
