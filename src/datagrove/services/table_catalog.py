"""``TableCatalog``: the datasets as Iceberg tables for engines outside Datagrove (read-only).

The Iceberg REST catalog (``api/iceberg_rest``) is a thin adapter over this. One namespace,
``datagrove``, holds every dataset as a table named by the dataset's id: ids never change and never
collide, where names do both (docs/iceberg-rest.md says why). What a caller sees is decided by
``services/access.py`` as for every other reader:

* it lists and loads only datasets it may view (one it may not is "not found");
* a dataset with row-level policies (PDP) is loadable only by a caller who sees all its rows
  (CO_OWNER and up): a reader of the files bypasses every row filter, so anyone else is refused
  with that reason (403), even though the dataset is listed.

A load is recorded in the activity log (``dataset.table_load``), as an export is. Loading a table
first folds the dataset's buffered one-row appends into it (when no other commit
holds the dataset), so a reader of the files sees every row acknowledged so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datagrove.domain import Actor, Dataset
from datagrove.errors import Forbidden, NotFound
from datagrove.services.access import AccessControl, Action
from datagrove.services.appends import AppendService
from datagrove.services.audit import AuditLog
from datagrove.services.datasets import DatasetService
from datagrove.tables.reader_access import ReaderAccess
from datagrove.tables.store import NAMESPACE, TableStore

PAGE = 500


class NoSuchNamespace(NotFound):
    code = "no_such_namespace"


class NoSuchTable(NotFound):
    code = "no_such_table"


@dataclass(frozen=True)
class LoadedTable:
    """One table for a reader: its metadata file (location and document) and the storage
    ``config`` (FileIO properties, credentials among them) its files need."""

    metadata_location: str
    metadata: dict[str, Any]
    config: dict[str, str]


class TableCatalog:
    def __init__(
        self,
        *,
        datasets: DatasetService,
        access: AccessControl,
        store: TableStore,
        appends: AppendService,
        reader_access: ReaderAccess,
        audit: AuditLog,
    ) -> None:
        self._datasets = datasets
        self._audit = audit
        self._access = access
        self._store = store
        self._appends = appends
        self._reader_access = reader_access

    def namespaces(self, *, actor: Actor) -> list[str]:
        self._access.require(actor, Action.LIST_DATASETS)
        return [NAMESPACE]

    def require_namespace(self, *, actor: Actor, namespace: str) -> None:
        self._access.require(actor, Action.LIST_DATASETS)
        if namespace != NAMESPACE:
            raise NoSuchNamespace(
                f"namespace {namespace!r} does not exist; the one namespace is {NAMESPACE!r}"
            )

    def list_tables(self, *, actor: Actor, namespace: str) -> list[str]:
        """The ids of the datasets ``actor`` may view, oldest first."""
        self.require_namespace(actor=actor, namespace=namespace)
        names: list[str] = []
        while True:
            page = self._datasets.list_datasets(actor=actor, limit=PAGE, offset=len(names))
            names.extend(dataset.id for dataset in page)
            if len(page) < PAGE:
                return names

    def require_table(self, *, actor: Actor, namespace: str, name: str) -> Dataset:
        """The dataset of table ``name``, if ``actor`` may read its files (see the module docstring)."""
        self.require_namespace(actor=actor, namespace=namespace)
        try:
            dataset = self._datasets.get(actor=actor, dataset_id=name)
        except NotFound as exc:
            raise NoSuchTable(f"table {namespace}.{name} does not exist") from exc
        if not self._access.sees_all_rows(actor, dataset):
            raise Forbidden(
                f"dataset {dataset.id} has row-level policies, and a reader of its files would see every "
                "row: only callers who see all its rows (CO_OWNER and up) may load it; query it over "
                "the HTTP API instead"
            )
        return dataset

    def load_table(self, *, actor: Actor, namespace: str, name: str) -> LoadedTable:
        dataset = self.require_table(actor=actor, namespace=namespace, name=name)
        self._appends.fold(dataset.id)
        try:
            document = self._store.table_document(dataset.id)
        except NotFound as exc:  # deleted in between
            raise NoSuchTable(f"table {namespace}.{name} does not exist") from exc
        config = self._reader_access.config(document.location, session_name=f"datagrove-user-{actor.user.id}")
        # As an export is: whoever loads the table can read every row of its files.
        self._audit.record(
            actor,
            "dataset.table_load",
            object_type="DATASET",
            object_id=dataset.id,
            object_name=dataset.name,
            detail="Iceberg REST catalog"
            + (", S3 credentials handed out" if "s3.access-key-id" in config else ""),
        )
        return LoadedTable(document.metadata_location, document.metadata, config)
