"""``PeopleCatalog``: changing and removing users, groups and group membership.

Creating and reading single users stays on ``Catalog`` (authentication needs it); this module holds
the rest. Every method is one short transaction; integrity errors become ``Conflict``/``NotFound``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.catalog.repository import _aware, _user, utcnow
from datagrove.domain import Group, PrincipalType, Role, User
from datagrove.errors import Conflict, NotFound


class PeopleCatalog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # --- users --------------------------------------------------------------------------------

    def email_owner(self, email: str) -> int | None:
        """The id of the user whose email matches ``email`` ignoring case, if any."""
        query = sa.select(t.users.c.id).where(sa.func.lower(t.users.c.email) == email.lower())
        with self.engine.connect() as db:
            return db.execute(query.limit(1)).scalar()

    def update_user(
        self, user_id: int, *, name: str | None = None, email: str | None = None, role: Role | None = None
    ) -> User:
        values: dict[str, Any] = {"updated_at": utcnow()}
        if name is not None:
            values["name"] = name
        if email is not None:
            values["email"] = email
        if role is not None:
            values["role"] = role.value
        try:
            with self.engine.begin() as db:
                updated = db.execute(t.users.update().where(t.users.c.id == user_id).values(**values))
                if updated.rowcount == 0:
                    raise NotFound(f"user {user_id} does not exist")
                row = db.execute(sa.select(t.users).where(t.users.c.id == user_id)).one()
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"a user with email {email!r} already exists") from exc
        return _user(row)

    def owned_dataset_count(self, user_id: int) -> int:
        query = sa.select(sa.func.count()).where(t.datasets.c.owner_id == user_id)
        with self.engine.connect() as db:
            return int(db.execute(query).scalar_one())

    def delete_user(self, user_id: int) -> None:
        """Remove the user with its credentials, memberships and dataset grants.

        Refuses with ``Conflict`` while the user owns a dataset (checked in the same transaction,
        and backed by the foreign key should a dataset be created meanwhile).
        """
        p = t.dataset_permissions
        try:
            with self.engine.begin() as db:
                if db.execute(sa.select(t.users.c.id).where(t.users.c.id == user_id)).first() is None:
                    raise NotFound(f"user {user_id} does not exist")
                owned = db.execute(
                    sa.select(sa.func.count()).where(t.datasets.c.owner_id == user_id)
                ).scalar_one()
                if owned:
                    raise _still_owns(user_id, int(owned))
                accounts = db.execute(
                    sa.select(sa.func.count()).where(t.accounts.c.owner_id == user_id)
                ).scalar_one()
                if accounts:
                    raise Conflict(
                        f"user {user_id} still owns {accounts} account(s); delete them first",
                        owned_accounts=int(accounts),
                    )
                db.execute(
                    p.delete().where(
                        p.c.principal_type == PrincipalType.USER.value, p.c.principal_id == user_id
                    )
                )
                _drop_account_grants(db, PrincipalType.USER, user_id)
                db.execute(t.group_members.delete().where(t.group_members.c.user_id == user_id))
                db.execute(t.oauth_clients.delete().where(t.oauth_clients.c.user_id == user_id))
                db.execute(t.access_tokens.delete().where(t.access_tokens.c.user_id == user_id))
                db.execute(t.users.delete().where(t.users.c.id == user_id))
        except sa.exc.IntegrityError as exc:
            raise _still_owns(user_id, None) from exc

    def memberships(self, user_ids: Iterable[int]) -> dict[int, list[Group]]:
        """The groups each of ``user_ids`` belongs to, by group id; users without groups are absent."""
        ids = sorted(set(user_ids))
        if not ids:
            return {}
        m = t.group_members
        query = (
            _group_query()
            .add_columns(m.c.user_id.label("member_id"))
            .join(m, m.c.group_id == t.groups.c.id)
            .where(m.c.user_id.in_(ids))
            .order_by(m.c.user_id, t.groups.c.id)
        )
        found: dict[int, list[Group]] = {}
        with self.engine.connect() as db:
            for row in db.execute(query):
                found.setdefault(row.member_id, []).append(_group(row))
        return found

    # --- groups -------------------------------------------------------------------------------

    def create_group(self, *, name: str, active: bool, default: bool, creator_id: int | None) -> Group:
        now = utcnow()
        try:
            with self.engine.begin() as db:
                group_id = db.execute(
                    t.groups.insert().values(
                        name=name,
                        active=active,
                        is_default=default,
                        creator_id=creator_id,
                        created_at=now,
                        updated_at=now,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"a group named {name!r} already exists") from exc
        return Group(group_id, name, active, default, creator_id, 0, now, now)

    def get_group(self, group_id: int) -> Group:
        with self.engine.connect() as db:
            row = db.execute(_group_query().where(t.groups.c.id == group_id)).first()
        if row is None:
            raise NotFound(f"group {group_id} does not exist")
        return _group(row)

    def list_groups(self, *, limit: int, offset: int) -> list[Group]:
        query = _group_query().order_by(t.groups.c.id).limit(limit).offset(offset)
        with self.engine.connect() as db:
            return [_group(row) for row in db.execute(query)]

    def update_group(
        self,
        group_id: int,
        *,
        name: str | None = None,
        active: bool | None = None,
        default: bool | None = None,
    ) -> Group:
        values: dict[str, Any] = {"updated_at": utcnow()}
        if name is not None:
            values["name"] = name
        if active is not None:
            values["active"] = active
        if default is not None:
            values["is_default"] = default
        try:
            with self.engine.begin() as db:
                updated = db.execute(t.groups.update().where(t.groups.c.id == group_id).values(**values))
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"a group named {name!r} already exists") from exc
        if updated.rowcount == 0:
            raise NotFound(f"group {group_id} does not exist")
        return self.get_group(group_id)

    def delete_group(self, group_id: int) -> None:
        """Remove the group, its memberships and its dataset and account grants."""
        p = t.dataset_permissions
        with self.engine.begin() as db:
            db.execute(
                p.delete().where(
                    p.c.principal_type == PrincipalType.GROUP.value, p.c.principal_id == group_id
                )
            )
            _drop_account_grants(db, PrincipalType.GROUP, group_id)
            db.execute(t.group_members.delete().where(t.group_members.c.group_id == group_id))
            deleted = db.execute(t.groups.delete().where(t.groups.c.id == group_id))
            if deleted.rowcount == 0:
                raise NotFound(f"group {group_id} does not exist")

    # --- membership ---------------------------------------------------------------------------

    def add_member(self, group_id: int, user_id: int) -> bool:
        """Add the user to the group; False when it already was a member (not an error)."""
        m = t.group_members
        try:
            with self.engine.begin() as db:
                if self._is_member(db, group_id, user_id):
                    return False
                db.execute(m.insert().values(group_id=group_id, user_id=user_id))
        except sa.exc.IntegrityError as exc:
            # A concurrent add of the same pair, or the group or user vanished meanwhile.
            if self._member_exists(group_id, user_id):
                return False
            raise NotFound(f"group {group_id} or user {user_id} does not exist") from exc
        return True

    def remove_member(self, group_id: int, user_id: int) -> bool:
        """Remove the user from the group; False when it was not a member (not an error)."""
        m = t.group_members
        with self.engine.begin() as db:
            deleted = db.execute(m.delete().where(m.c.group_id == group_id, m.c.user_id == user_id))
        return deleted.rowcount > 0

    def member_ids(self, group_id: int, *, limit: int, offset: int) -> list[int]:
        m = t.group_members
        query = (
            sa.select(m.c.user_id)
            .where(m.c.group_id == group_id)
            .order_by(m.c.user_id)
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as db:
            return [int(user_id) for user_id in db.execute(query).scalars()]

    def _member_exists(self, group_id: int, user_id: int) -> bool:
        with self.engine.connect() as db:
            return self._is_member(db, group_id, user_id)

    @staticmethod
    def _is_member(db: sa.Connection, group_id: int, user_id: int) -> bool:
        m = t.group_members
        query = sa.select(m.c.group_id).where(m.c.group_id == group_id, m.c.user_id == user_id)
        return db.execute(query).first() is not None


def _drop_account_grants(db: sa.Connection, principal_type: PrincipalType, principal_id: int) -> None:
    """A deleted user's or group's account grants go too: a later principal with the same id
    (SQLite reuses ids) must not inherit them."""
    g = t.account_grants
    db.execute(g.delete().where(g.c.principal_type == principal_type.value, g.c.principal_id == principal_id))


def _still_owns(user_id: int, count: int | None) -> Conflict:
    what = f"{count} dataset(s)" if count else "datasets"
    return Conflict(
        f"user {user_id} still owns {what}; give them another owner (PUT /v1/datasets/{{id}} with "
        "owner.id) or delete them first",
        owned_datasets=count,
    )


def _group_query() -> sa.Select[Any]:
    # An alias, so that a query which also joins dg_group_members still counts every member.
    counted = t.group_members.alias("counted")
    members = (
        sa.select(sa.func.count())
        .where(counted.c.group_id == t.groups.c.id)
        .correlate(t.groups)
        .scalar_subquery()
        .label("member_count")
    )
    return sa.select(t.groups, members)


def _group(row: Any) -> Group:
    return Group(
        id=row.id,
        name=row.name,
        active=bool(row.active),
        default=bool(row.is_default),
        creator_id=row.creator_id,
        member_count=int(row.member_count),
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )
