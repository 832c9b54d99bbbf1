"""The activity log: every write, share, revoke, login failure and query, with its outcome.

``record`` never raises: a failure to log is itself logged, and the request it describes goes on.
"""

from __future__ import annotations

import logging
from datetime import datetime

from datagrove.catalog.audit import AuditCatalog
from datagrove.domain import Actor, AuditEntry
from datagrove.services.access import AccessControl, Action

log = logging.getLogger("datagrove.audit")

MAX_AUDIT_PAGE = 1000


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
