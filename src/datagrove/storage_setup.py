"""The table storage that the settings name, built in one place for the composition root
(``app.build_services``) and for the commands that run no server (``datagrove backup`` and
``restore``), which should not pay for importing the whole application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from datagrove.settings import Settings
from datagrove.tables.storage import S3Options, Storage

if TYPE_CHECKING:
    from datagrove.services.backup import BackupService


def build_storage(settings: Settings) -> Storage:
    """The data directory's warehouse, or the bucket of ``storage_url``."""
    if not settings.storage_url:
        return Storage.local(settings.warehouse_dir)
    return Storage.s3(settings.storage_url, s3_options(settings))


def s3_options(settings: Settings) -> S3Options:
    """How to reach the bucket of ``storage_url`` (also what the Iceberg REST catalog vends from)."""
    secret = settings.s3_secret_access_key
    return S3Options(
        endpoint=settings.s3_endpoint,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret is not None else None,
        path_style=settings.s3_path_style,
    )


def backup_service(settings: Settings) -> BackupService:
    """``datagrove backup`` and ``restore``: the catalog and the storage only, no server parts
    (a restore target must stay untouched until the backup has been checked)."""
    from datagrove.services.backup import BackupService

    return BackupService(
        catalog_url=settings.resolved_catalog_url, storage=build_storage(settings), data_dir=settings.data_dir
    )
