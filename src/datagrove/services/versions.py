"""Dataset versions (beyond Domo): the history of a dataset's data, reading an earlier version, and
making one current again.

A version is an Iceberg snapshot, named by its snapshot id (a decimal string: the ids pass 2^53,
which JavaScript numbers cannot hold). The rules, one place for every caller:

* Listing and reading versions need what reading the dataset needs (CAN_VIEW); a dataset one may
  not view answers 404, as everywhere. Row-level policies apply to every version exactly as to the
  current one, over the version's own columns (a filter on a column it lacks matches nothing).
* ``version`` on a read means exactly that snapshot's rows, even when it is the current one:
  one-row appends still in the append buffer are part of the current data only (a read without
  ``version``), so the same version always answers the same.
* A version that is not a number answers 404; a number not in the table's history (never was, or
  expired by maintenance) answers 410 ``version_gone`` naming it.
* A restore (CO_OWNER and up, audited) commits the version's files as a NEW snapshot, under the
  dataset's commit claim; the history is kept, so a restore can itself be undone. It discards the
  buffered one-row appends, as a REPLACE does (they were acknowledged after the restored version).
  A version whose columns differ from the dataset's (names and types) is refused with 409: a
  restore never changes the schema. Change the schema back first (``PUT /v1/datasets/{id}``), then
  restore.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from datagrove import metrics
from datagrove.domain import Actor, Dataset
from datagrove.errors import Conflict, DatagroveError, NotFound
from datagrove.services.access import Action
from datagrove.services.audit import AuditLog
from datagrove.tables.store import PastVersion, TableStore
from datagrove.tables.types import Column
from datagrove.tables.versions import TableVersion, made_by_properties

if TYPE_CHECKING:
    from datagrove.services.datasets import DatasetService

MAX_VERSIONS_PAGE = 500
_SNAPSHOT_ID = re.compile(r"[0-9]{1,19}")


def parse_version(text: str) -> int:
    """A version's snapshot id; ``NotFound`` for anything that cannot be one."""
    if not _SNAPSHOT_ID.fullmatch(text) or int(text) >= 2**63:
        raise NotFound(f"version {text!r} does not exist: a version is a snapshot id (digits)")
    return int(text)


def read_version(store: TableStore, dataset: Dataset, version: str) -> PastVersion:
    """What a read of ``version`` of ``dataset`` sees (the caller has checked access)."""
    return store.version(dataset.id, parse_version(version), dataset.columns)


class VersionService:
    def __init__(self, *, datasets: DatasetService, store: TableStore, audit: AuditLog) -> None:
        self._datasets = datasets
        self._store = store
        self._audit = audit

    def list_versions(self, *, actor: Actor, dataset_id: str, limit: int, offset: int) -> list[TableVersion]:
        """The dataset's versions, newest first, ``limit`` (at most ``MAX_VERSIONS_PAGE``) from
        ``offset``."""
        dataset = self._datasets.get(actor=actor, dataset_id=dataset_id)
        limit = max(0, min(limit, MAX_VERSIONS_PAGE))
        offset = max(0, offset)
        return self._store.versions(dataset.id)[offset : offset + limit]

    def restore(self, *, actor: Actor, dataset_id: str, version: str) -> Dataset:
        """Make ``version`` the dataset's current data as a new version (see the module docstring)."""
        dataset = self._datasets.get(actor=actor, dataset_id=dataset_id, action=Action.RESTORE)
        try:
            snapshot_id = parse_version(version)
            with self._datasets.commit_claim(dataset.id):
                # Again under the claim: a schema change may have landed since.
                dataset = self._datasets.get(actor=actor, dataset_id=dataset_id, action=Action.RESTORE)
                past = self._store.version(dataset.id, snapshot_id, dataset.columns)
                _require_same_schema(version, past.columns, dataset.columns)
                with metrics.committing("restore"):
                    self._store.restore_version(
                        dataset.id,
                        snapshot_id,
                        appended_through=self._datasets.appended_rows_so_far(dataset.id),
                        snapshot_properties=made_by_properties(
                            "restore", made_id=version, user_id=actor.user.id
                        ),
                    )
        except DatagroveError as exc:
            if exc.status < 500:
                self._record(actor, dataset, f"version {version} -- {exc.message}", outcome="failure")
            raise
        updated = self._datasets.record_data_change(dataset.id)
        self._record(actor, dataset, f"version {version}, {updated.row_count} rows")
        return updated

    def _record(self, actor: Actor, dataset: Dataset, detail: str, *, outcome: str = "success") -> None:
        self._audit.record(
            actor,
            "dataset.restore",
            object_type="DATASET",
            object_id=dataset.id,
            object_name=dataset.name,
            outcome=outcome,
            detail=detail,
        )


def _require_same_schema(version: str, then: tuple[Column, ...], now: tuple[Column, ...]) -> None:
    old = {c.name: c.type for c in then}
    new = {c.name: c.type for c in now}
    if old == new:
        return
    differences = []
    for name in [*old, *(n for n in new if n not in old)]:
        if name not in new:
            differences.append(f"{name} (only in the version)")
        elif name not in old:
            differences.append(f"{name} (only in the dataset now)")
        elif old[name] != new[name]:
            differences.append(f"{name} ({old[name].value} in the version, {new[name].value} now)")
    raise Conflict(
        f"version {version} has other columns than the dataset now: {', '.join(differences)}. "
        "A restore does not change the schema: change the dataset's schema back to the version's "
        "first (PUT /v1/datasets/{id}), then restore",
        version=version,
    )
