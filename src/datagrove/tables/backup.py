"""The table files' side of ``datagrove backup`` and ``datagrove restore``.

A backup holds every file that the live snapshots of each table need, as of the catalog copy: the
table's current metadata JSON, and each snapshot's manifest list, manifests and data files. They
are written under ``files/`` by their path relative to the warehouse root (the data directory's
``warehouse`` or ``warehouse/`` in a bucket), so a restore can place them under another root.

Iceberg metadata records absolute locations, so a restore rewrites them: the metadata JSON, the
manifest lists (Avro: each manifest's path and, since its manifest is rewritten too, its length)
and the manifests (each data file's path). Data files are copied as they are. Every rewrite is a
generic walk over the decoded values that moves any string under the old root to the new one:
fields the rewrite does not know about survive unchanged, schema and file metadata included.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import fastavro
from pyiceberg.table import StaticTable

from datagrove.errors import BackupRefused, DatagroveError
from datagrove.tables.maintenance import References, normal_uri
from datagrove.tables.storage import Storage
from datagrove.tables.store import warehouse_uri

CHUNK_BYTES = 8 * 1024 * 1024
COPY_THREADS = 4
FILES_DIR = "files"


@dataclass(frozen=True)
class CopiedFile:
    """One file in a backup: its path in the backup directory, size and SHA-256 (hex)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class TableFiles:
    """What one table's live snapshots need, relative to the warehouse root."""

    name: str
    metadata: str  # the current metadata JSON
    files: tuple[str, ...]  # every file, the metadata JSON among them
    snapshot_id: int | None
    rows: int | None  # the current snapshot's total-records


# --- addresses ------------------------------------------------------------------------------------


class Warehouse:
    """The warehouse root of a storage and the different spellings of a URI under it."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.root = warehouse_uri(storage).rstrip("/")

    def spellings(self, root: str | None = None) -> tuple[str, ...]:
        """How metadata may spell ``root`` (default this one): as a URI and, locally, a bare path."""
        root = (root or self.root).rstrip("/")
        parsed = urlparse(root)
        found = [root]
        if parsed.scheme == "file":
            path = unquote(parsed.path)
            found += [path, Path(path).resolve().as_uri(), str(Path(path).resolve())]
        elif parsed.scheme in ("s3", "s3a"):
            found += [f"s3://{parsed.netloc}{parsed.path}", f"s3a://{parsed.netloc}{parsed.path}"]
        return tuple(dict.fromkeys(found))

    def relative(self, uri: str) -> str:
        """``uri``'s path under the root, '/'-separated; refused when it is not under it."""
        for spelling in (uri, normal_uri(self.storage, uri)):
            for root in self.spellings():
                if spelling.startswith(root + "/"):
                    return spelling[len(root) + 1 :]
        raise BackupRefused(f"a table file lies outside the warehouse {self.root}: {uri}")

    def uri(self, relative: str) -> str:
        return f"{self.root}/{relative}"


def mover(old_root: str, new: Warehouse) -> Callable[[str], str]:
    """A function taking a URI under ``old_root`` (any spelling) to the same path under ``new``;
    anything else is returned as it is."""
    olds = sorted(new.spellings(old_root), key=len, reverse=True)

    def move(value: str) -> str:
        for old in olds:
            if value == old or value.startswith(old + "/"):
                return new.root + value[len(old) :]
        return value

    return move


# --- backup ---------------------------------------------------------------------------------------


def table_files(warehouse: Warehouse, name: str, metadata_location: str) -> TableFiles:
    """Every file the table's live snapshots need, read from the metadata at ``metadata_location``
    (as the catalog copy records it, not as the table is now)."""
    table = StaticTable.from_metadata(metadata_location, properties=warehouse.storage.iceberg_properties())
    files = References(table, warehouse.storage).all_files()
    snapshot = table.current_snapshot()
    summary = snapshot.summary if snapshot is not None else None
    rows = summary.get("total-records") if summary is not None else None
    return TableFiles(
        name=name,
        metadata=warehouse.relative(metadata_location),
        files=tuple(sorted({warehouse.relative(uri) for uri in files})),
        snapshot_id=snapshot.snapshot_id if snapshot is not None else None,
        rows=int(rows) if rows is not None else None,
    )


def copy_files(warehouse: Warehouse, relatives: list[str], destination: Path) -> list[CopiedFile]:
    """Copy each file (relative to the warehouse root) to ``destination/files/``, hashing it on
    the way. A file that is gone was deleted since the catalog copy: only a dataset deleted
    while the backup ran does that (maintenance waits for the backup's lease)."""

    def copy(relative: str) -> CopiedFile:
        target = destination / FILES_DIR / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        try:
            with warehouse.storage.open(warehouse.uri(relative)) as source, target.open("wb") as out:
                while chunk := source.read(CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except DatagroveError as exc:
            raise BackupRefused(
                f"{relative} could not be read during the backup ({exc.message}); a dataset deleted "
                "while the backup ran does that: run the backup again"
            ) from exc
        return CopiedFile(f"{FILES_DIR}/{relative}", size, digest.hexdigest())

    with concurrent.futures.ThreadPoolExecutor(COPY_THREADS) as pool:
        return list(pool.map(copy, relatives))


def file_digest(path: Path) -> CopiedFile:
    """The size and SHA-256 of a local file (its ``path`` as given)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as data:
        while chunk := data.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return CopiedFile(str(path), size, digest.hexdigest())


# --- restore --------------------------------------------------------------------------------------


def is_empty(warehouse: Warehouse) -> bool:
    return not warehouse.storage.list(warehouse.root)


def clear(warehouse: Warehouse) -> None:
    warehouse.storage.delete_tree(warehouse.root)


def restore_files(
    source: Path, relatives: list[str], warehouse: Warehouse, *, old_root: str, scratch: Path
) -> None:
    """Place the backup's files (under ``source/files/``) under ``warehouse``, with every location
    in their metadata moved from ``old_root``. Manifests are written before the manifest lists
    that record their lengths, and metadata JSON last."""
    move = mover(old_root, warehouse)
    scratch.mkdir(parents=True, exist_ok=True)
    lengths: dict[str, int] = {}  # new manifest URI -> its new length

    def place(relative: str, write: Callable[[Path, Path], None]) -> int:
        staged = scratch / relative.replace("/", "_")
        write(source / FILES_DIR / relative, staged)
        size = staged.stat().st_size
        warehouse.storage.put(staged, warehouse.uri(relative))
        return size

    manifests = [r for r in relatives if r.endswith(".avro") and not _is_manifest_list(r)]
    lists = [r for r in relatives if r.endswith(".avro") and _is_manifest_list(r)]
    metadata = [r for r in relatives if r.endswith(".metadata.json")]
    data = sorted(set(relatives) - set(manifests) - set(lists) - set(metadata))
    with concurrent.futures.ThreadPoolExecutor(COPY_THREADS) as pool:
        list(pool.map(lambda r: place(r, _copy), data))
        sizes = pool.map(lambda r: place(r, lambda s, t: _rewrite_avro(s, t, move, {})), manifests)
        lengths.update(zip((warehouse.uri(r) for r in manifests), sizes, strict=True))
        list(pool.map(lambda r: place(r, lambda s, t: _rewrite_avro(s, t, move, lengths)), lists))
        list(pool.map(lambda r: place(r, lambda s, t: _rewrite_json(s, t, move)), metadata))


def _copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)


def _is_manifest_list(relative: str) -> bool:
    return relative.rsplit("/", 1)[-1].startswith("snap-")  # pyiceberg's and Java's naming


def _rewrite_json(source: Path, target: Path, move: Callable[[str], str]) -> None:
    document = json.loads(source.read_text(encoding="utf-8"))
    target.write_text(json.dumps(_moved(document, move, {})), encoding="utf-8")


def _rewrite_avro(source: Path, target: Path, move: Callable[[str], str], lengths: dict[str, int]) -> None:
    """Rewrite an Iceberg Avro file (a manifest or a manifest list) with moved locations, keeping
    its writer schema (field ids), codec and file metadata (schema, partition spec, format)."""
    with source.open("rb") as data:
        reader = fastavro.reader(data)
        schema = json.loads(reader.metadata["avro.schema"])
        metadata = {k: v for k, v in reader.metadata.items() if not k.startswith("avro.")}
        records = [_moved(record, move, lengths) for record in reader]
        codec = reader.codec
    with target.open("wb") as out:
        fastavro.writer(out, schema, records, codec=codec, metadata=metadata)


def _moved(value: Any, move: Callable[[str], str], lengths: dict[str, int]) -> Any:
    if isinstance(value, str):
        return move(value)
    if isinstance(value, list):
        return [_moved(v, move, lengths) for v in value]
    if isinstance(value, dict):
        moved = {k: _moved(v, move, lengths) for k, v in value.items()}
        path = moved.get("manifest_path")
        if isinstance(path, str) and path in lengths:
            moved["manifest_length"] = lengths[path]
        return moved
    return value


def walk_files(directory: Path) -> Iterator[Path]:
    """Every file under ``directory``, for a check that a backup holds no more than it lists."""
    for root, _dirs, names in os.walk(directory):
        for name in names:
            yield Path(root) / name
