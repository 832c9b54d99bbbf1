"""``WebSessionCatalog``: users' password hashes and web sessions, in the catalog database so that
every node sees the same sessions (failed sign-ins: ``catalog/auth_failures.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.catalog.repository import _aware, _user
from datagrove.domain import User


@dataclass(frozen=True)
class SessionRow:
    id_digest: str
    user: User
    csrf_token: str
    credential: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime


class WebSessionCatalog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # --- passwords ----------------------------------------------------------------------------

    def set_password_hash(self, user_id: int, password_hash: str | None) -> bool:
        """Store (or with None, remove) a user's password hash; False when there is no such user."""
        with self.engine.begin() as db:
            changed = db.execute(
                t.users.update().where(t.users.c.id == user_id).values(password_hash=password_hash)
            ).rowcount
        return bool(changed)

    def user_with_password_hash(self, email: str) -> tuple[User, str | None] | None:
        """The user whose email is ``email`` ignoring case, and its password hash."""
        query = sa.select(t.users).where(sa.func.lower(t.users.c.email) == email.strip().lower())
        with self.engine.connect() as db:
            row = db.execute(query).first()
        return None if row is None else (_user(row), row.password_hash)

    # --- sessions -----------------------------------------------------------------------------

    def create_session(
        self,
        *,
        id_digest: str,
        user_id: int,
        csrf_token: str,
        credential: str,
        now: datetime,
        expires_at: datetime,
        source_address: str | None,
    ) -> None:
        with self.engine.begin() as db:
            db.execute(
                t.web_sessions.insert().values(
                    id_digest=id_digest,
                    user_id=user_id,
                    csrf_token=csrf_token,
                    credential=credential,
                    created_at=now,
                    expires_at=expires_at,
                    last_seen_at=now,
                    source_address=source_address,
                )
            )

    def find_session(self, id_digest: str) -> SessionRow | None:
        s, u = t.web_sessions, t.users
        query = (
            sa.select(
                s.c.id_digest,
                s.c.csrf_token,
                s.c.credential,
                s.c.created_at.label("s_created_at"),
                s.c.expires_at,
                s.c.last_seen_at,
                *(column.label("u_" + column.name) for column in u.c),
            )
            .join(u, u.c.id == s.c.user_id)
            .where(s.c.id_digest == id_digest)
        )
        with self.engine.connect() as db:
            row = db.execute(query).first()
        if row is None:
            return None
        return SessionRow(
            id_digest=row.id_digest,
            user=_user(row, "u_"),
            csrf_token=row.csrf_token,
            credential=row.credential,
            created_at=_aware(row.s_created_at),
            expires_at=_aware(row.expires_at),
            last_seen_at=_aware(row.last_seen_at),
        )

    def touch_session(self, id_digest: str, now: datetime) -> None:
        with self.engine.begin() as db:
            db.execute(
                t.web_sessions.update()
                .where(t.web_sessions.c.id_digest == id_digest)
                .values(last_seen_at=now)
            )

    def delete_session(self, id_digest: str) -> None:
        with self.engine.begin() as db:
            db.execute(t.web_sessions.delete().where(t.web_sessions.c.id_digest == id_digest))

    def delete_sessions_ended(self, *, expired_before: datetime, idle_before: datetime) -> int:
        """Remove sessions past their absolute end or idle since before ``idle_before``."""
        s = t.web_sessions
        with self.engine.begin() as db:
            return db.execute(
                s.delete().where(sa.or_(s.c.expires_at <= expired_before, s.c.last_seen_at <= idle_before))
            ).rowcount
