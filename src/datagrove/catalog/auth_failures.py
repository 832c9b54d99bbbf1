"""``AuthFailureCatalog``: failed authentications, in the catalog database so that every node
counts the same failures.

One table (``dg_sign_in_failures``, made for web sign-ins) holds every kind: a row is a *subject*
(an email for a web sign-in, ``(api) oauth client <id>`` for the token endpoint, ``(api) developer
token`` for an unknown developer token on an API request), the source address and the time. The
``email`` column holds the subject; its index serves either.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.catalog.repository import _aware

# The column widths of dg_sign_in_failures.
_SUBJECT_CHARS = 320
_ADDRESS_CHARS = 64


def _subject(subject: str) -> str:
    return subject.strip().lower()[:_SUBJECT_CHARS]


class AuthFailureCatalog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record_failure(self, *, subject: str, source_address: str, at: datetime) -> None:
        with self.engine.begin() as db:
            db.execute(
                t.sign_in_failures.insert().values(
                    email=_subject(subject), source_address=source_address[:_ADDRESS_CHARS], failed_at=at
                )
            )

    def failures_since(
        self,
        *,
        since: datetime,
        subject: str | None = None,
        source_address: str | None = None,
        prefix: str | None = None,
        not_prefix: str | None = None,
    ) -> list[datetime]:
        """When the failures for ``subject`` (or from ``source_address``) after ``since`` happened,
        oldest first; only those whose subject starts with ``prefix``, or does not with ``not_prefix``."""
        f = t.sign_in_failures
        query = sa.select(f.c.failed_at).where(f.c.failed_at > since)
        if subject is not None:
            query = query.where(f.c.email == _subject(subject))
        if source_address is not None:
            query = query.where(f.c.source_address == source_address[:_ADDRESS_CHARS])
        if prefix is not None:
            query = query.where(f.c.email.startswith(prefix.lower(), autoescape=True))
        if not_prefix is not None:
            query = query.where(sa.not_(f.c.email.startswith(not_prefix.lower(), autoescape=True)))
        with self.engine.connect() as db:
            return [_aware(at) for at in db.execute(query.order_by(f.c.failed_at)).scalars()]

    def forget_failures(self, *, subject: str | None = None, before: datetime | None = None) -> None:
        """Forget a subject's failures (it signed in), or every failure older than ``before``."""
        f = t.sign_in_failures
        query = f.delete()
        if subject is not None:
            query = query.where(f.c.email == _subject(subject))
        if before is not None:
            query = query.where(f.c.failed_at <= before)
        with self.engine.begin() as db:
            db.execute(query)
