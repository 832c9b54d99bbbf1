"""``PermissionCatalog``: who holds which access level on which dataset, and group membership."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.catalog.read_cache import VersionedCache
from datagrove.catalog.repository import utcnow
from datagrove.catalog.versions import ACCESS, DATASETS
from datagrove.catalog.visibility import grants_reaching, user_groups_query
from datagrove.domain import AccessLevel, Grant, PrincipalType
from datagrove.errors import Conflict


class PermissionCatalog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # Asked on every request about a dataset; kept for one catalog version (catalog/read_cache.py).
        self._levels = VersionedCache((ACCESS, DATASETS), data=True)

    def levels(self, dataset_id: str, user_id: int) -> list[AccessLevel]:
        """Every level the user holds on the dataset, directly or through its active groups."""
        return list(self._levels.get((dataset_id, user_id), lambda: self._read_levels(dataset_id, user_id)))

    def _read_levels(self, dataset_id: str, user_id: int) -> tuple[AccessLevel, ...]:
        with self.engine.connect() as db:
            rows = db.execute(_LEVELS, {"dataset_id": dataset_id, "user_id": user_id}).scalars()
            return tuple(AccessLevel(level) for level in rows)

    def group_ids(self, user_id: int) -> list[int]:
        with self.engine.connect() as db:
            return list(db.execute(user_groups_query(user_id)).scalars())

    def grants(self, dataset_id: str) -> list[Grant]:
        p = t.dataset_permissions
        query = (
            sa.select(p)
            .where(p.c.dataset_id == dataset_id)
            .order_by(p.c.principal_type.desc(), p.c.principal_id)
        )
        with self.engine.connect() as db:
            return [_grant(row) for row in db.execute(query)]

    def grant(self, grant: Grant, *, granted_by: int | None) -> None:
        """Set the principal's level on the dataset (replacing any earlier one)."""
        self.grant_many([grant], granted_by=granted_by)

    def grant_many(self, grants: list[Grant], *, granted_by: int | None) -> None:
        """Set every grant's level (replacing earlier ones), all in one transaction."""
        with self.engine.begin() as db:
            for grant in grants:
                self._replace(db, grant, granted_by)

    @staticmethod
    def _replace(db: sa.Connection, grant: Grant, granted_by: int | None) -> None:
        p = t.dataset_permissions
        db.execute(p.delete().where(_grant_key(grant.dataset_id, grant.principal_type, grant.principal_id)))
        db.execute(
            p.insert().values(
                dataset_id=grant.dataset_id,
                principal_type=grant.principal_type.value,
                principal_id=grant.principal_id,
                access_level=grant.level.value,
                granted_by=granted_by,
                granted_at=utcnow(),
            )
        )

    def change(
        self,
        dataset_id: str,
        principal_type: PrincipalType,
        principal_id: int,
        *,
        level: AccessLevel | None,
        expected: AccessLevel | None,
        granted_by: int | None,
    ) -> bool:
        """Set the principal's level (None removes its grant) iff it still holds ``expected``, in one
        transaction. Refuses (returns False) to take OWNER from the last OWNER; raises Conflict when
        the grant changed after ``expected`` was read, since the caller's decision rested on it."""
        p = t.dataset_permissions
        key = _grant_key(dataset_id, principal_type, principal_id)
        with self.engine.begin() as db:
            _serialize_grant_changes(db, dataset_id)
            current = db.execute(sa.select(p.c.access_level).where(key)).scalar()
            if current != (expected.value if expected else None):
                raise Conflict("the grant changed while it was being set; send the request again")
            if (
                current == AccessLevel.OWNER.value
                and level is not AccessLevel.OWNER
                and _owners(db, dataset_id) <= 1
            ):
                return False
            if level is None:
                db.execute(p.delete().where(key))
            else:
                self._replace(db, Grant(dataset_id, principal_type, principal_id, level), granted_by)
        return True

    def revoke(self, dataset_id: str, principal_type: PrincipalType, principal_id: int) -> bool:
        """Remove the principal's grant; refuses (returns False) to remove the last OWNER."""
        p = t.dataset_permissions
        key = _grant_key(dataset_id, principal_type, principal_id)
        with self.engine.begin() as db:
            _serialize_grant_changes(db, dataset_id)
            level = db.execute(sa.select(p.c.access_level).where(key)).scalar()
            if level == AccessLevel.OWNER.value and _owners(db, dataset_id) <= 1:
                return False
            db.execute(p.delete().where(key))
        return True


def _grant_key(dataset_id: str, principal_type: PrincipalType, principal_id: int) -> Any:
    p = t.dataset_permissions
    return sa.and_(
        p.c.dataset_id == dataset_id,
        p.c.principal_type == principal_type.value,
        p.c.principal_id == principal_id,
    )


def _owners(db: sa.Connection, dataset_id: str) -> int:
    p = t.dataset_permissions
    query = sa.select(sa.func.count()).where(
        p.c.dataset_id == dataset_id, p.c.access_level == AccessLevel.OWNER.value
    )
    return int(db.execute(query).scalar_one())


def _serialize_grant_changes(db: sa.Connection, dataset_id: str) -> None:
    """Take the dataset row's write lock first, so that changes to one dataset's grants run one at a
    time and each sees the others' result: two owners lowering each other at once must not leave
    the dataset without an OWNER. (A SELECT FOR UPDATE would not do: SQLite ignores it and its
    transaction only starts at the first write; on PostgreSQL, locking owner rows in different
    orders deadlocks.)"""
    db.execute(
        t.datasets.update().where(t.datasets.c.id == dataset_id).values(updated_at=t.datasets.c.updated_at)
    )


def _grant(row: Any) -> Grant:
    return Grant(
        row.dataset_id, PrincipalType(row.principal_type), row.principal_id, AccessLevel(row.access_level)
    )


# Built once (with bound parameters): every request on a dataset asks it, and building it cost as
# much as running it.
_LEVELS = sa.select(t.dataset_permissions.c.access_level).where(
    t.dataset_permissions.c.dataset_id == sa.bindparam("dataset_id"),
    grants_reaching(sa.bindparam("user_id")),  # type: ignore[arg-type]
)
