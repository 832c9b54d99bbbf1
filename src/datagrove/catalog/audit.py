"""``AuditCatalog``: the append-only activity log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.catalog.repository import _aware, utcnow
from datagrove.domain import AuditEntry


class AuditCatalog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def append(self, **values: Any) -> None:
        with self.engine.begin() as db:
            db.execute(t.audit.insert().values(time=utcnow(), **values))

    def delete_older(self, before: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` of the oldest entries made before ``before``, in one short
        transaction (the time index finds them); returns how many."""
        oldest = (
            sa.select(t.audit.c.id)
            .where(t.audit.c.time < before)
            .order_by(t.audit.c.time, t.audit.c.id)
            .limit(limit)
        )
        with self.engine.begin() as db:
            ids = list(db.execute(oldest).scalars())
            if ids:
                db.execute(t.audit.delete().where(t.audit.c.id.in_(ids)))
        return len(ids)

    def entries(
        self,
        *,
        start: datetime | None,
        end: datetime | None,
        user_id: int | None,
        limit: int,
        offset: int,
        action: str | None = None,
    ) -> list[AuditEntry]:
        """Newest first; ``action`` keeps the entries whose action starts with it (``token`` keeps
        ``token.create`` and ``token.revoke``)."""
        query = sa.select(t.audit)
        if start is not None:
            query = query.where(t.audit.c.time >= start)
        if end is not None:
            query = query.where(t.audit.c.time <= end)
        if user_id is not None:
            query = query.where(t.audit.c.actor_id == user_id)
        if action:
            query = query.where(t.audit.c.action.startswith(action, autoescape=True))
        query = query.order_by(t.audit.c.time.desc(), t.audit.c.id.desc()).limit(limit).offset(offset)
        with self.engine.connect() as db:
            return [_entry(row) for row in db.execute(query)]


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        time=_aware(row.time),
        actor_id=row.actor_id,
        actor_name=row.actor_name,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        object_name=row.object_name,
        outcome=row.outcome,
        detail=row.detail,
        ip_address=row.ip_address,
    )
