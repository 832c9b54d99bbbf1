"""``datagrove backup`` and ``datagrove restore``: a consistent copy of a running Datagrove, and a
server brought back from it.

A backup, online (servers keep serving and committing):

1. takes a lease in the catalog, so that table maintenance deletes no file meanwhile (see
   ``catalog/backup.py``), renewed while the backup runs;
2. copies the catalog as one consistent state (SQLite's backup API; ``pg_dump`` on an exported
   snapshot for PostgreSQL), reading from that same state which Iceberg tables exist and where
   their current metadata is;
3. copies every file those metadata need (``tables/backup.py``): files are never changed once
   written and none of them is deleted while the lease is held, so the copy is exactly the state
   of step 2, whatever commits land meanwhile;
4. writes ``manifest.json`` last: every file with its size and SHA-256, and each table's snapshot
   and rows. A directory without it is not a backup.

A restore checks every file of the backup against the manifest before it writes anything, refuses
a target that already holds a catalog or table files (unless told to overwrite it), then loads the
catalog, places the files under the target's storage with their locations rewritten, and points
the catalog at them. No server may run on the target meanwhile.

The key that seals account credentials (``secret.key`` in the data directory) is not in the
catalog, and a backup holds it only when asked (``include_secret_key``): a backup without it
reveals no credential, and the restored server needs the key put back by hand (or the
``secret_key`` setting).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datagrove.catalog import backup as catalog_backup
from datagrove.crypto import KEY_FILE_NAME
from datagrove.errors import BackupRefused
from datagrove.tables import backup as table_backup
from datagrove.tables.storage import Storage

log = logging.getLogger("datagrove.backup")
MANIFEST = "manifest.json"
FORMAT = 1
SECRET_KEY_FILE = KEY_FILE_NAME
LEASE_SECONDS = 120.0  # a dead backup holds back maintenance's deletions this long at most


@dataclass(frozen=True)
class BackupReport:
    destination: str
    catalog: str  # sqlite or postgresql
    tables: int
    files: int
    bytes: int
    seconds: float
    secret_key: bool


@dataclass(frozen=True)
class RestoreReport:
    source: str
    tables: int
    files: int
    bytes: int
    seconds: float
    secret_key: bool


class BackupService:
    def __init__(
        self, *, catalog_url: str, storage: Storage, data_dir: Path, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self._catalog_url = catalog_url
        self._warehouse = table_backup.Warehouse(storage)
        self._data_dir = data_dir
        self._lease_seconds = lease_seconds

    # --- backup ---------------------------------------------------------------------------------

    def backup(self, *, destination: Path, include_secret_key: bool = False) -> BackupReport:
        """Write a backup into ``destination`` (a new or empty directory)."""
        started = time.monotonic()
        catalog_backup.kind_of(self._catalog_url)
        if destination.exists() and any(destination.iterdir()):
            raise BackupRefused(f"{destination} is not empty: back up into a new directory")
        key = self._data_dir / SECRET_KEY_FILE
        if include_secret_key and not key.exists():
            raise BackupRefused(f"there is no {key} (is the secret_key setting used instead?)")
        lease = catalog_backup.BackupLease(self._catalog_url, seconds=self._lease_seconds)
        lease.take()
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(lease, stop), name="backup-lease", daemon=True)
        renewer.start()
        try:
            destination.mkdir(parents=True, exist_ok=True)
            copy = catalog_backup.copy_catalog(self._catalog_url, destination)
            tables = [
                table_backup.table_files(self._warehouse, f"{t.namespace}.{t.name}", t.metadata_location)
                for t in copy.tables
            ]
            relatives = sorted({f for table in tables for f in table.files})
            files = table_backup.copy_files(self._warehouse, relatives, destination)
        finally:
            stop.set()
            renewer.join()
            lease.release()
        catalog_file = table_backup.file_digest(copy.file)
        files.append(table_backup.CopiedFile(copy.file.name, catalog_file.size, catalog_file.sha256))
        if include_secret_key:
            shutil.copyfile(key, destination / SECRET_KEY_FILE)
            os.chmod(destination / SECRET_KEY_FILE, 0o600)
            digest = table_backup.file_digest(destination / SECRET_KEY_FILE)
            files.append(table_backup.CopiedFile(SECRET_KEY_FILE, digest.size, digest.sha256))
        manifest = {
            "format": FORMAT,
            "createdAt": datetime.now(UTC).isoformat(),
            "catalog": {"kind": copy.kind, "file": copy.file.name, "schema": copy.schema},
            "warehouse": self._warehouse.root,
            "secretKey": SECRET_KEY_FILE if include_secret_key else None,
            "tables": [
                {
                    "name": t.name,
                    "metadata": t.metadata,
                    "snapshotId": t.snapshot_id,
                    "rows": t.rows,
                    "files": len(t.files),
                }
                for t in tables
            ],
            "files": [asdict(f) for f in sorted(files, key=lambda f: f.path)],
        }
        # Written last, through a rename: a backup directory with a manifest is a complete backup.
        staged = destination / f".{MANIFEST}.{uuid.uuid4().hex}"
        staged.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        os.replace(staged, destination / MANIFEST)
        report = BackupReport(
            destination=str(destination),
            catalog=copy.kind,
            tables=len(tables),
            files=len(files),
            bytes=sum(f.size for f in files),
            seconds=round(time.monotonic() - started, 3),
            secret_key=include_secret_key,
        )
        log.info("backup written", extra={"fields": asdict(report)})
        return report

    def _renew(self, lease: catalog_backup.BackupLease, stop: threading.Event) -> None:
        while not stop.wait(self._lease_seconds / 4):
            try:
                lease.renew()
            except Exception:  # the catalog hiccuped: the next renewal is well within the lease
                log.warning("could not renew the backup lease; will try again", exc_info=True)

    # --- restore --------------------------------------------------------------------------------

    def restore(self, *, source: Path, force: bool = False) -> RestoreReport:
        """Bring this server's (empty) catalog and storage back from the backup in ``source``."""
        started = time.monotonic()
        manifest = verify(source)  # before anything is written
        catalog = manifest["catalog"]
        key = self._data_dir / SECRET_KEY_FILE
        if not force:
            held = []
            if not catalog_backup.is_empty(self._catalog_url):
                held.append("a catalog")
            if not table_backup.is_empty(self._warehouse):
                held.append(f"table files under {self._warehouse.root}")
            if manifest.get("secretKey") and key.exists():
                held.append(f"a secret key ({key})")
            if held:
                raise BackupRefused(
                    f"the target already holds {' and '.join(held)}: restore into a fresh data directory "
                    "(and catalog), or pass --force to replace them"
                )
        catalog_backup.check_target(catalog["kind"], self._catalog_url, schema=catalog["schema"])
        files = manifest["files"]
        table_files = [
            f["path"].removeprefix(table_backup.FILES_DIR + "/") for f in files if _is_table_file(f)
        ]
        self._data_dir.mkdir(parents=True, exist_ok=True)
        if force:
            table_backup.clear(self._warehouse)
        scratch = self._data_dir / "staging" / f"restore-{uuid.uuid4().hex}"
        try:
            table_backup.restore_files(
                source, table_files, self._warehouse, old_root=manifest["warehouse"], scratch=scratch
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        # The catalog last: until it is there, the target is no server, just files.
        catalog_backup.load_catalog(
            catalog["kind"], source / catalog["file"], self._catalog_url, schema=catalog["schema"]
        )
        catalog_backup.relocate(self._catalog_url, table_backup.mover(manifest["warehouse"], self._warehouse))
        if manifest.get("secretKey"):
            staged = key.with_name(f".{key.name}.restoring")
            shutil.copyfile(source / manifest["secretKey"], staged)
            os.chmod(staged, 0o600)
            os.replace(staged, key)
        report = RestoreReport(
            source=str(source),
            tables=len(manifest["tables"]),
            files=len(files),
            bytes=sum(int(f["size"]) for f in files),
            seconds=round(time.monotonic() - started, 3),
            secret_key=bool(manifest.get("secretKey")),
        )
        log.info("backup restored", extra={"fields": asdict(report)})
        return report


def _is_table_file(entry: dict[str, Any]) -> bool:
    return str(entry["path"]).startswith(table_backup.FILES_DIR + "/")


def verify(source: Path) -> dict[str, Any]:
    """The backup's manifest, once every file it lists is there with its size and SHA-256 and the
    backup holds no table file it does not list; ``BackupRefused`` naming the first fault."""
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupRefused(f"{source} holds no {MANIFEST}: it is not a (complete) backup") from None
    except (OSError, ValueError) as exc:
        raise BackupRefused(f"the backup's {MANIFEST} cannot be read: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupRefused(f"the backup has format {manifest.get('format')!r}; this version reads {FORMAT}")
    listed = set()
    for entry in manifest["files"]:
        path = source / entry["path"]
        if not path.resolve().is_relative_to(source.resolve()):
            raise BackupRefused(f"the manifest names a file outside the backup: {entry['path']}")
        if not path.is_file():
            raise BackupRefused(f"the backup lacks {entry['path']}")
        listed.add(path.resolve())
    # Several files at once: hashing releases the GIL, and reads overlap.
    with concurrent.futures.ThreadPoolExecutor(table_backup.COPY_THREADS) as pool:
        digests = pool.map(lambda entry: table_backup.file_digest(source / entry["path"]), manifest["files"])
        for entry, found in zip(manifest["files"], digests, strict=True):
            if found.size != entry["size"] or found.sha256 != entry["sha256"]:
                raise BackupRefused(
                    f"{entry['path']} is damaged: {found.size} bytes with SHA-256 {found.sha256[:16]}..., "
                    f"the manifest records {entry['size']} bytes with {str(entry['sha256'])[:16]}..."
                )
    for path in table_backup.walk_files(source / table_backup.FILES_DIR):
        if path.resolve() not in listed:
            raise BackupRefused(f"the backup holds a file its manifest does not list: {path}")
    return manifest
