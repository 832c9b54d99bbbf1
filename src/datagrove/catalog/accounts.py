"""``AccountCatalog``: accounts (with their credentials sealed) and the grants on them.

The catalog never sees a credential in clear: ``credentials`` is the text ``crypto.SecretBox``
sealed, bound to the account's id. ``create`` therefore takes a function that seals for a given id,
and calls it between inserting the row and committing, so that no account exists without its
credentials even for a moment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.catalog.repository import _aware, utcnow
from datagrove.catalog.visibility import user_groups_query
from datagrove.domain import AccessLevel, AccountGrant, PrincipalType
from datagrove.errors import BadRequest, Conflict, NotFound

#: Orders ``list`` understands (Java's AccountClient sends ``sort``; the documented value is ``name``).
SORTS = {
    "name": (t.accounts.c.name, t.accounts.c.id),
    "-name": (t.accounts.c.name.desc(), t.accounts.c.id.desc()),
    "id": (t.accounts.c.id,),
    "-id": (t.accounts.c.id.desc(),),
}


@dataclass(frozen=True)
class StoredAccount:
    """An account row as stored: ``credentials`` is sealed text (None: no credentials)."""

    id: int
    name: str
    type: str
    owner_id: int
    valid: bool
    credentials: str | None
    created_at: datetime
    modified_at: datetime


class AccountCatalog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(
        self, *, name: str, type: str, owner_id: int, valid: bool, seal: Callable[[int], str | None]
    ) -> StoredAccount:
        """Insert the account, then store ``seal(its id)`` as its credentials, in one transaction."""
        a = t.accounts
        now = utcnow()
        try:
            with self.engine.begin() as db:
                account_id = db.execute(
                    a.insert().values(
                        name=name, type=type, owner_id=owner_id, valid=valid, created_at=now, modified_at=now
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                sealed = seal(account_id)
                db.execute(a.update().where(a.c.id == account_id).values(credentials=sealed))
        except sa.exc.IntegrityError as exc:
            raise NotFound(f"user {owner_id} does not exist") from exc
        return StoredAccount(account_id, name, type, owner_id, valid, sealed, now, now)

    def get(self, account_id: int) -> StoredAccount:
        with self.engine.connect() as db:
            row = db.execute(sa.select(t.accounts).where(t.accounts.c.id == account_id)).first()
        if row is None:
            raise NotFound(f"account {account_id} does not exist")
        return _account(row)

    def list_accounts(
        self, *, visible_to: int | None, limit: int, offset: int, sort: str | None
    ) -> list[StoredAccount]:
        """A page of accounts; with ``visible_to``, only those that user owns or holds a grant on
        (directly or through an active group). ``sort``: ``name``, ``-name``, ``id`` (default), ``-id``."""
        order = SORTS.get(sort or "id")
        if order is None:
            raise BadRequest(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
        query = sa.select(t.accounts)
        if visible_to is not None:
            g = t.account_grants
            granted = sa.exists(
                sa.select(g.c.account_id).where(g.c.account_id == t.accounts.c.id, _reaching(visible_to))
            )
            query = query.where(sa.or_(t.accounts.c.owner_id == visible_to, granted))
        query = query.order_by(*order).limit(limit).offset(offset)
        with self.engine.connect() as db:
            return [_account(row) for row in db.execute(query)]

    def update(
        self,
        account_id: int,
        *,
        name: str | None = None,
        valid: bool | None = None,
        credentials: str | None = None,
        expected_credentials: str | None = None,
    ) -> StoredAccount:
        """Change what is given. New ``credentials`` are written only if the stored ones are still
        ``expected_credentials`` (what the caller merged into): two concurrent changes of an
        account's credentials must not silently drop one of them (409 instead)."""
        a = t.accounts
        values: dict[str, Any] = {"modified_at": utcnow()}
        if name is not None:
            values["name"] = name
        if valid is not None:
            values["valid"] = valid
        where = a.c.id == account_id
        if credentials is not None:
            values["credentials"] = credentials
            where = sa.and_(
                where,
                a.c.credentials.is_(None)
                if expected_credentials is None
                else a.c.credentials == expected_credentials,
            )
        with self.engine.begin() as db:
            updated = db.execute(a.update().where(where).values(**values))
        if updated.rowcount == 0:
            self.get(account_id)  # 404 when it is gone
            raise Conflict(f"account {account_id} changed while it was being updated; send the request again")
        return self.get(account_id)

    def delete(self, account_id: int) -> None:
        """Remove the account and its grants. Refused (409) while a stream uses it: its runs would
        fail with nothing to say which credentials they lost."""
        s = t.streams
        with self.engine.begin() as db:
            using = sa.select(s.c.id).where(s.c.account_id == account_id).order_by(s.c.id).limit(10)
            streams = [int(stream_id) for stream_id in db.execute(using).scalars()]
            if streams:
                raise Conflict(
                    f"account {account_id} is used by stream(s) {', '.join(map(str, streams))}; "
                    "give them another account or delete them first",
                    streams=streams,
                )
            db.execute(t.account_grants.delete().where(t.account_grants.c.account_id == account_id))
            deleted = db.execute(t.accounts.delete().where(t.accounts.c.id == account_id))
        if deleted.rowcount == 0:
            raise NotFound(f"account {account_id} does not exist")

    # --- grants ---------------------------------------------------------------------------------

    def levels(self, account_id: int, user_id: int) -> list[AccessLevel]:
        """Every level the user holds on the account, directly or through its active groups."""
        g = t.account_grants
        query = sa.select(g.c.level).where(g.c.account_id == account_id, _reaching(user_id))
        with self.engine.connect() as db:
            return [AccessLevel(level) for level in db.execute(query).scalars()]

    def grants(self, account_id: int) -> list[AccountGrant]:
        """The account's grants, users first."""
        g = t.account_grants
        query = (
            sa.select(g)
            .where(g.c.account_id == account_id)
            .order_by(g.c.principal_type.desc(), g.c.principal_id)
        )
        with self.engine.connect() as db:
            return [
                AccountGrant(
                    row.account_id,
                    PrincipalType(row.principal_type),
                    row.principal_id,
                    AccessLevel(row.level),
                )
                for row in db.execute(query)
            ]

    def grant(self, grant: AccountGrant) -> None:
        """Give the principal ``grant.level`` on the account, replacing any earlier grant."""
        g = t.account_grants
        key = sa.and_(
            g.c.account_id == grant.account_id,
            g.c.principal_type == grant.principal_type.value,
            g.c.principal_id == grant.principal_id,
        )
        try:
            with self.engine.begin() as db:
                db.execute(g.delete().where(key))
                db.execute(
                    g.insert().values(
                        account_id=grant.account_id,
                        principal_type=grant.principal_type.value,
                        principal_id=grant.principal_id,
                        level=grant.level.value,
                        granted_at=utcnow(),
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise NotFound(f"account {grant.account_id} does not exist") from exc


def _reaching(user_id: int) -> Any:
    """SQL condition on ``dg_account_grants``: the grant is to the user or one of its active groups."""
    g = t.account_grants
    return sa.or_(
        sa.and_(g.c.principal_type == PrincipalType.USER.value, g.c.principal_id == user_id),
        sa.and_(
            g.c.principal_type == PrincipalType.GROUP.value, g.c.principal_id.in_(user_groups_query(user_id))
        ),
    )


def _account(row: Any) -> StoredAccount:
    return StoredAccount(
        id=row.id,
        name=row.name,
        type=row.type,
        owner_id=row.owner_id,
        valid=bool(row.valid),
        credentials=row.credentials,
        created_at=_aware(row.created_at),
        modified_at=_aware(row.modified_at),
    )
