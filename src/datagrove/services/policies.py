"""Row-level policies (Domo's PDP): which rows of a dataset each user may see.

``row_filter`` is what the query engine enforces: a SQL predicate over the dataset's columns, built
into the sandbox's view of the dataset, so no user SQL can get around it. It reads the policies on
every call, so a changed policy applies to the very next query or export.

Reading and managing policies both need CO_OWNER on the dataset (``Action.MANAGE_POLICIES``):
a policy names other users and their filters, which a user bound by PDP must not learn. A policy applies to the users it names and to the members of the active groups it
names; ``virtualUsers`` are stored and echoed but match nobody here. Types ``user`` and ``system``
behave alike (filters decide); ``open`` shows every row. See ``datagrove.tables.policy_sql`` for
the filter semantics (NULL never matches; LIKE patterns; text operators).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from datagrove.catalog.policies import PolicyCatalog
from datagrove.catalog.repository import Catalog
from datagrove.domain import Actor, Dataset, Policy, PolicyFilter, PolicyType
from datagrove.errors import BadRequest
from datagrove.services.access import AccessControl, Action
from datagrove.services.audit import AuditLog
from datagrove.tables.policy_sql import check_filters, row_predicate
from datagrove.tables.types import Column

MAX_POLICY_PAGE = 1000
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class PolicyDraft:
    """A policy as a client describes it. ``None`` means "not given": the default on create
    (type ``user``, no filters, users, groups or virtual users), "unchanged" on update."""

    name: str | None = None
    type: PolicyType | None = None
    filters: tuple[PolicyFilter, ...] | None = None
    users: tuple[int, ...] | None = None
    groups: tuple[int, ...] | None = None
    virtual_users: tuple[str, ...] | None = None


class PolicyService:
    def __init__(
        self, *, catalog: Catalog, policies: PolicyCatalog, access: AccessControl, audit: AuditLog
    ) -> None:
        self._catalog = catalog
        self._policies = policies
        self._access = access
        self._audit = audit

    # --- enforcement ----------------------------------------------------------------------------

    def row_filter(
        self, actor: Actor, dataset: Dataset, columns: Sequence[Column] | None = None
    ) -> str | None:
        """None when the actor sees every row; otherwise a DuckDB predicate (``false`` for no rows)
        over ``columns`` (default: the dataset's; an earlier version passes its own, and a filter on
        a column that version lacks then matches nothing)."""
        if self._access.sees_all_rows(actor, dataset):
            return None
        policies = self._policies.for_dataset(dataset.id)
        groups = set(self._access.group_ids(actor)) if any(p.groups for p in policies) else set()
        applicable = [p for p in policies if actor.user.id in p.users or groups.intersection(p.groups)]
        return row_predicate(dataset.columns if columns is None else columns, applicable)

    # --- management -----------------------------------------------------------------------------

    def list_policies(
        self, *, actor: Actor, dataset_id: str, limit: int | None = None, offset: int = 0
    ) -> list[Policy]:
        dataset = self._dataset(actor, dataset_id, Action.MANAGE_POLICIES)
        limit = MAX_POLICY_PAGE if limit is None else max(0, min(limit, MAX_POLICY_PAGE))
        return self._policies.for_dataset(dataset.id, limit=limit, offset=max(0, offset))

    def get(self, *, actor: Actor, dataset_id: str, policy_id: int) -> Policy:
        dataset = self._dataset(actor, dataset_id, Action.MANAGE_POLICIES)
        return self._policies.get(dataset.id, policy_id)

    def create(self, *, actor: Actor, dataset_id: str, draft: PolicyDraft) -> Policy:
        """A new policy; 400 (nothing stored) when the name is missing or anything does not fit."""
        dataset = self._dataset(actor, dataset_id, Action.MANAGE_POLICIES)
        if draft.name is None:
            raise BadRequest("a policy needs a name")
        draft = self._checked(dataset, draft)
        policy = self._policies.create(
            dataset_id=dataset.id,
            name=draft.name or "",
            type=draft.type or PolicyType.USER,
            filters=draft.filters or (),
            users=draft.users or (),
            groups=draft.groups or (),
            virtual_users=draft.virtual_users or (),
        )
        self._record(actor, "policy.create", policy)
        return policy

    def update(self, *, actor: Actor, dataset_id: str, policy_id: int, draft: PolicyDraft) -> Policy:
        """Change the fields ``draft`` gives and keep the others; 400 (nothing changed) when a given
        field does not fit."""
        dataset = self._dataset(actor, dataset_id, Action.MANAGE_POLICIES)
        current = self._policies.get(dataset.id, policy_id)
        draft = self._checked(dataset, draft)
        given = {f.name: getattr(draft, f.name) for f in dataclasses.fields(draft)}
        changed = dataclasses.replace(current, **{k: v for k, v in given.items() if v is not None})
        policy = self._policies.replace(changed)
        self._record(actor, "policy.update", policy, changed=[k for k, v in given.items() if v is not None])
        return policy

    def delete(self, *, actor: Actor, dataset_id: str, policy_id: int) -> None:
        dataset = self._dataset(actor, dataset_id, Action.MANAGE_POLICIES)
        policy = self._policies.get(dataset.id, policy_id)
        self._policies.delete(dataset.id, policy_id)
        self._record(actor, "policy.delete", policy)

    # --- internals ------------------------------------------------------------------------------

    def _dataset(self, actor: Actor, dataset_id: str, action: Action) -> Dataset:
        dataset = self._catalog.get_dataset(dataset_id)
        self._access.require(actor, action, dataset)
        return dataset

    def _checked(self, dataset: Dataset, draft: PolicyDraft) -> PolicyDraft:
        """``draft`` with duplicate ids dropped, or BadRequest for the first field that does not fit."""
        if draft.name is not None:
            if not draft.name.strip():
                raise BadRequest("a policy name must not be empty")
            if len(draft.name) > MAX_NAME_LENGTH or "\x00" in draft.name:
                raise BadRequest(f"a policy name must be at most {MAX_NAME_LENGTH} characters, without NUL")
        if draft.filters is not None:
            check_filters(dataset.columns, draft.filters)
        users = None if draft.users is None else tuple(dict.fromkeys(draft.users))
        groups = None if draft.groups is None else tuple(dict.fromkeys(draft.groups))
        if users:
            missing = self._policies.missing_users(users)
            if missing:
                raise BadRequest(f"unknown user ids: {', '.join(map(str, missing))}")
        if groups:
            missing = self._policies.missing_groups(groups)
            if missing:
                raise BadRequest(f"unknown group ids: {', '.join(map(str, missing))}")
        virtual_users = None if draft.virtual_users is None else tuple(dict.fromkeys(draft.virtual_users))
        return dataclasses.replace(draft, users=users, groups=groups, virtual_users=virtual_users)

    def _record(self, actor: Actor, action: str, policy: Policy, *, changed: list[str] | None = None) -> None:
        detail = (
            f"dataset {policy.dataset_id}; type {policy.type.value}; {len(policy.filters)} filters; "
            f"users {list(policy.users)}; groups {list(policy.groups)}"
        )
        if changed is not None:
            detail = f"changed {', '.join(changed) or 'nothing'}; {detail}"
        self._audit.record(
            actor, action, object_type="POLICY", object_id=policy.id, object_name=policy.name, detail=detail
        )
