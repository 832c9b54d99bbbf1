"""``PolicyCatalog``: a dataset's PDP policies in ``dg_policies`` (filters, users, groups as JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.catalog.repository import _aware, utcnow
from datagrove.domain import Policy, PolicyFilter, PolicyOperator, PolicyType
from datagrove.errors import NotFound


class PolicyCatalog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(
        self,
        *,
        dataset_id: str,
        name: str,
        type: PolicyType,
        filters: tuple[PolicyFilter, ...],
        users: tuple[int, ...],
        groups: tuple[int, ...],
        virtual_users: tuple[str, ...],
    ) -> Policy:
        now = utcnow()
        with self.engine.begin() as db:
            policy_id = db.execute(
                t.policies.insert().values(
                    dataset_id=dataset_id,
                    created_at=now,
                    updated_at=now,
                    **_columns(name, type, filters, users, groups, virtual_users),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return Policy(policy_id, dataset_id, name, type, filters, users, groups, virtual_users, now, now)

    def get(self, dataset_id: str, policy_id: int) -> Policy:
        query = sa.select(t.policies).where(
            t.policies.c.id == policy_id, t.policies.c.dataset_id == dataset_id
        )
        with self.engine.connect() as db:
            row = db.execute(query).first()
        if row is None:
            raise NotFound(f"policy {policy_id} of dataset {dataset_id} does not exist")
        return _policy(row)

    def for_dataset(self, dataset_id: str, *, limit: int | None = None, offset: int = 0) -> list[Policy]:
        query = (
            sa.select(t.policies)
            .where(t.policies.c.dataset_id == dataset_id)
            .order_by(t.policies.c.id)
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as db:
            return [_policy(row) for row in db.execute(query)]

    def replace(self, policy: Policy) -> Policy:
        """Store every field of ``policy`` (matched by id and dataset) and return it as stored."""
        now = utcnow()
        with self.engine.begin() as db:
            updated = db.execute(
                t.policies.update()
                .where(t.policies.c.id == policy.id, t.policies.c.dataset_id == policy.dataset_id)
                .values(
                    updated_at=now,
                    **_columns(
                        policy.name,
                        policy.type,
                        policy.filters,
                        policy.users,
                        policy.groups,
                        policy.virtual_users,
                    ),
                )
            )
        if updated.rowcount == 0:
            raise NotFound(f"policy {policy.id} of dataset {policy.dataset_id} does not exist")
        return self.get(policy.dataset_id, policy.id)

    def delete(self, dataset_id: str, policy_id: int) -> None:
        with self.engine.begin() as db:
            deleted = db.execute(
                t.policies.delete().where(t.policies.c.id == policy_id, t.policies.c.dataset_id == dataset_id)
            )
        if deleted.rowcount == 0:
            raise NotFound(f"policy {policy_id} of dataset {dataset_id} does not exist")

    def missing_users(self, user_ids: Iterable[int]) -> list[int]:
        """Those of ``user_ids`` that name no user, in the order given."""
        return _missing(t.users, user_ids, self.engine)

    def missing_groups(self, group_ids: Iterable[int]) -> list[int]:
        """Those of ``group_ids`` that name no group (active or not), in the order given."""
        return _missing(t.groups, group_ids, self.engine)


def _missing(table: sa.Table, ids: Iterable[int], engine: sa.Engine) -> list[int]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    with engine.connect() as db:
        found = set(db.execute(sa.select(table.c.id).where(table.c.id.in_(wanted))).scalars())
    return [i for i in wanted if i not in found]


def _columns(
    name: str,
    type: PolicyType,
    filters: tuple[PolicyFilter, ...],
    users: tuple[int, ...],
    groups: tuple[int, ...],
    virtual_users: tuple[str, ...],
) -> dict[str, Any]:
    return {
        "name": name,
        "type": type.value,
        "filters_json": json.dumps(
            [
                {"column": f.column, "values": list(f.values), "operator": f.operator.value, "not": f.negate}
                for f in filters
            ]
        ),
        "users_json": json.dumps(list(users)),
        "groups_json": json.dumps(list(groups)),
        "virtual_users_json": json.dumps(list(virtual_users)),
    }


def _policy(row: Any) -> Policy:
    return Policy(
        id=row.id,
        dataset_id=row.dataset_id,
        name=row.name,
        type=PolicyType(row.type),
        filters=tuple(
            PolicyFilter(
                column=f["column"],
                operator=PolicyOperator(f["operator"]),
                values=tuple(f["values"]),
                negate=bool(f["not"]),
            )
            for f in json.loads(row.filters_json)
        ),
        users=tuple(json.loads(row.users_json)),
        groups=tuple(json.loads(row.groups_json)),
        virtual_users=tuple(json.loads(row.virtual_users_json)),
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )
