"""The activity log: every write, share, revoke, login failure and query, with its outcome.

``record`` never raises: a failure to log is itself logged, and the request it describes goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from datagrove.catalog.audit import AuditCatalog
from datagrove.domain import Actor, AuditEntry
from datagrove.services.access import AccessControl, Action

log = logging.getLogger("datagrove.audit")

MAX_AUDIT_PAGE = 1000
# Entries deleted per transaction by the retention: a few ms of the catalog's write lock each.
PRUNE_BATCH_ROWS = 5000


class AuditLog:
    def __init__(self, *, catalog: AuditCatalog, access: AccessControl) -> None:
        self._catalog = catalog
        self._access = access

    def record(
        self,
        actor: Actor | None,
        action: str,
        *,
        object_type: str | None = None,
        object_id: object = None,
        object_name: str | None = None,
        outcome: str = "success",
        detail: str | None = None,
        ip_address: str | None = None,
    ) -> None:
        try:
            self._catalog.append(
                actor_id=actor.user.id if actor else None,
                actor_name=actor.user.name if actor else None,
                action=action,
                object_type=object_type,
                object_id=None if object_id is None else str(object_id),
                object_name=object_name,
                outcome=outcome,
                detail=detail,
                ip_address=ip_address,
            )
        except Exception:
            log.exception("could not write the activity log", extra={"fields": {"action": action}})

    def prune(self, *, before: datetime, batch_rows: int = PRUNE_BATCH_ROWS, stop: Callable[[], bool]) -> int:
        """Delete the entries made before ``before`` (retention; no actor: the server does it), in
        batches of ``batch_rows`` each its own transaction, so writers to the catalog wait for one
        batch at most; stops early once ``stop()`` is true. Returns how many were deleted, and
        records that in the log itself when there were any."""
        deleted = 0
        while not stop():
            batch = self._catalog.delete_older(before, limit=batch_rows)
            deleted += batch
            if batch < batch_rows:
                break
        if deleted:
            self.record(
                None,
                "audit.prune",
                object_type="AUDIT",
                detail=f"{deleted} entries made before {before.isoformat()} deleted (retention)",
            )
        return deleted

    def entries(
        self,
        *,
        actor: Actor,
        start: datetime | None,
        end: datetime | None,
        user_id: int | None,
        limit: int,
        offset: int,
        action: str | None = None,
    ) -> list[AuditEntry]:
        """A page of the log, newest first (admins only); ``action`` keeps the actions starting with it."""
        self._access.require(actor, Action.READ_AUDIT)
        return self._catalog.entries(
            start=start,
            end=end,
            user_id=user_id,
            limit=max(0, min(limit, MAX_AUDIT_PAGE)),
            offset=max(0, offset),
            action=action,
        )
