"""Row-level policies (Domo's PDP): which rows of a dataset each user may see.

``row_filter`` is what the query engine enforces: a SQL predicate over the dataset's columns, built
into the sandbox's view of the dataset, so no user SQL can get around it.
"""

from __future__ import annotations

from datagrove.catalog.repository import Catalog
from datagrove.domain import Actor, Dataset
from datagrove.services.access import AccessControl
from datagrove.services.audit import AuditLog


class PolicyService:
    def __init__(self, *, catalog: Catalog, access: AccessControl, audit: AuditLog) -> None:
        self._catalog = catalog
        self._access = access
        self._audit = audit

    def row_filter(self, actor: Actor, dataset: Dataset) -> str | None:
        """None when the actor sees every row; otherwise a DuckDB predicate (``false`` for no rows)."""
        if self._access.sees_all_rows(actor, dataset):
            return None
        return "false"  # until policies exist, PDP hides every row from non-owners
