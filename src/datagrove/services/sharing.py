"""Sharing a dataset: who holds which level, granting it to users and groups, revoking it.

The decisions are ``AccessControl``'s; this module applies them. The rules:

* Listing grants needs VIEW. Sharing needs CAN_SHARE and never grants above one's own level
  (``AccessControl.can_grant``). Revoking needs REVOKE (CO_OWNER or more).
* A share is all or nothing: every entry is parsed, its principal looked up and its level checked
  before the first grant is written. An unknown user or group is a 400 naming it.
* Sharing only ever raises a principal's level: sharing CAN_VIEW with a CO_OWNER leaves it
  CO_OWNER. So a share can never take away the last OWNER, or lower someone behind their back.
* Setting one principal's level (``set_level``, Domo's ``PUT .../permissions``) moves it up or
  down: granting or raising follows the share rules, lowering or removing follows the revoke rules
  (``AccessControl.can_change``). Setting the level it already holds changes nothing.
* The last OWNER of a dataset cannot be revoked or lowered (409); nothing changes.
* Shares, revokes and refused attempts are written to the activity log.

Nothing is cached: the very next request sees a grant or a revoke.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from datagrove.catalog.permissions import PermissionCatalog
from datagrove.catalog.repository import Catalog
from datagrove.domain import AccessLevel, Actor, Dataset, Grant, Group, PrincipalType
from datagrove.errors import BadRequest, Conflict, DatagroveError, Forbidden, NotFound
from datagrove.services.access import AccessControl, Action
from datagrove.services.audit import AuditLog


class GroupDirectory(Protocol):
    """Where group names come from (the people catalog)."""

    def get_group(self, group_id: int) -> Group: ...


@dataclass(frozen=True)
class ShareEntry:
    """One requested grant: a principal and the level it should get."""

    principal_type: PrincipalType
    principal_id: int
    level: AccessLevel


@dataclass(frozen=True)
class PrincipalGrant:
    """A grant as the permissions list shows it: the principal's display name included."""

    principal_type: PrincipalType
    principal_id: int
    name: str
    level: AccessLevel


class SharingService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        permissions: PermissionCatalog,
        access: AccessControl,
        audit: AuditLog,
        groups: GroupDirectory | None = None,
    ) -> None:
        self._catalog = catalog
        self._permissions = permissions
        self._access = access
        self._audit = audit
        self._groups = groups

    def grants(self, *, actor: Actor, dataset_id: str) -> list[PrincipalGrant]:
        """Every grant on the dataset, users first (needs VIEW)."""
        dataset = self._dataset(actor, dataset_id, Action.VIEW)
        return [
            PrincipalGrant(
                g.principal_type, g.principal_id, self._name(g.principal_type, g.principal_id), g.level
            )
            for g in self._permissions.grants(dataset.id)
        ]

    def own_level(self, *, actor: Actor, dataset_id: str) -> tuple[Dataset, AccessLevel]:
        """The dataset and the actor's effective level on it (needs VIEW, so the level is never None)."""
        dataset = self._dataset(actor, dataset_id, Action.VIEW)
        level = self._access.level(actor, dataset)
        assert level is not None  # VIEW was allowed
        return dataset, level

    def share(self, *, actor: Actor, dataset_id: str, entries: Sequence[ShareEntry]) -> list[PrincipalGrant]:
        """Grant every entry or none; returns the dataset's grants afterwards."""
        dataset = self._dataset(actor, dataset_id, Action.VIEW)
        try:
            self._access.require(actor, Action.SHARE, dataset)
            names = [self._existing(entry) for entry in entries]
            for entry in entries:
                decision = self._access.can_grant(actor, dataset, entry.level)
                if not decision.allowed:
                    raise Forbidden(decision.reason)
        except DatagroveError as exc:
            self._refused(actor, "dataset.share", dataset, exc)
            raise
        current = {(g.principal_type, g.principal_id): g.level for g in self._permissions.grants(dataset.id)}
        changes: list[tuple[Grant, str]] = []
        for entry, name in zip(entries, names, strict=True):
            held = current.get((entry.principal_type, entry.principal_id))
            if held is not None and held.rank >= entry.level.rank:
                continue  # sharing never lowers a level
            current[(entry.principal_type, entry.principal_id)] = entry.level
            changes.append((Grant(dataset.id, entry.principal_type, entry.principal_id, entry.level), name))
        # One transaction: a share is applied whole or not at all, even if the process dies midway.
        self._permissions.grant_many([grant for grant, _ in changes], granted_by=actor.user.id)
        for granted, name in changes:
            self._audit.record(
                actor,
                "dataset.share",
                object_type="DATASET",
                object_id=dataset.id,
                object_name=dataset.name,
                detail=f"{granted.principal_type.value} {granted.principal_id} ({name}): {granted.level.value}",
            )
        return self.grants(actor=actor, dataset_id=dataset.id)

    def revoke(
        self, *, actor: Actor, dataset_id: str, principal_type: PrincipalType, principal_id: int
    ) -> None:
        """Remove the principal's grant (needs REVOKE). 404 when it holds none; 409 for the last OWNER."""
        dataset = self._dataset(actor, dataset_id, Action.VIEW)
        who = f"{principal_type.value} {principal_id}"
        try:
            self._access.require(actor, Action.REVOKE, dataset)
            held = self._held(dataset.id, principal_type, principal_id)
            if held is None:
                raise NotFound(f"{who} has no grant on dataset {dataset.id}")
            if not self._permissions.revoke(dataset.id, principal_type, principal_id):
                raise Conflict(
                    f"{who} is the last OWNER of dataset {dataset.id} and cannot be revoked; "
                    "make someone else OWNER first"
                )
        except DatagroveError as exc:
            self._refused(actor, "dataset.revoke", dataset, exc, detail=who)
            raise
        self._audit.record(
            actor,
            "dataset.revoke",
            object_type="DATASET",
            object_id=dataset.id,
            object_name=dataset.name,
            detail=f"{who} ({self._name(principal_type, principal_id)}): was {held.value}",
        )

    def _held(self, dataset_id: str, principal_type: PrincipalType, principal_id: int) -> AccessLevel | None:
        """The level the principal's own grant gives it on the dataset (None: no grant)."""
        return next(
            (
                g.level
                for g in self._permissions.grants(dataset_id)
                if g.principal_type is principal_type and g.principal_id == principal_id
            ),
            None,
        )

    def set_level(
        self,
        *,
        actor: Actor,
        dataset_id: str,
        principal_type: PrincipalType,
        principal_id: int,
        level: AccessLevel | None,
    ) -> list[PrincipalGrant]:
        """Give the principal exactly ``level`` (None: no grant); returns the grants afterwards.
        403 when the rules refuse, 400 for an unknown principal, 409 for the last OWNER."""
        dataset = self._dataset(actor, dataset_id, Action.VIEW)
        who = f"{principal_type.value} {principal_id}"
        try:
            self._access.require(actor, Action.SHARE, dataset)  # every change needs at least CAN_SHARE
            held = self._held(dataset.id, principal_type, principal_id)
            if held is None and level is not None:
                self._existing(ShareEntry(principal_type, principal_id, level))
            decision = self._access.can_change(actor, dataset, held, level)
            if not decision.allowed:
                raise Forbidden(decision.reason)
            if held == level:
                return self.grants(actor=actor, dataset_id=dataset.id)
            if not self._permissions.change(
                dataset.id, principal_type, principal_id, level=level, expected=held, granted_by=actor.user.id
            ):
                raise Conflict(
                    f"{who} is the last OWNER of dataset {dataset.id} and cannot be lowered; "
                    "make someone else OWNER first"
                )
        except DatagroveError as exc:
            self._refused(actor, "dataset.permission", dataset, exc, detail=who)
            raise
        self._audit.record(
            actor,
            "dataset.permission",
            object_type="DATASET",
            object_id=dataset.id,
            object_name=dataset.name,
            detail=(
                f"{who} ({self._name(principal_type, principal_id)}): "
                f"{held.value if held else 'NONE'} -> {level.value if level else 'NONE'}"
            ),
        )
        return self.grants(actor=actor, dataset_id=dataset.id)

    # --- helpers ----------------------------------------------------------------------------------

    def _dataset(self, actor: Actor, dataset_id: str, action: Action) -> Dataset:
        dataset = self._catalog.get_dataset(dataset_id)
        self._access.require(actor, action, dataset)
        return dataset

    def _existing(self, entry: ShareEntry) -> str:
        """The principal's name; a 400 naming it when it does not exist."""
        name = self._lookup(entry.principal_type, entry.principal_id)
        if name is None:
            raise BadRequest(
                f"{entry.principal_type.value.lower()} {entry.principal_id} does not exist",
                principal_type=entry.principal_type.value,
                principal_id=entry.principal_id,
            )
        return name

    def _name(self, principal_type: PrincipalType, principal_id: int) -> str:
        return self._lookup(principal_type, principal_id) or ""

    def _lookup(self, principal_type: PrincipalType, principal_id: int) -> str | None:
        try:
            if principal_type is PrincipalType.USER:
                return self._catalog.get_user(principal_id).name
            if self._groups is None:
                return None
            return self._groups.get_group(principal_id).name
        except NotFound:
            return None

    def _refused(
        self, actor: Actor, action: str, dataset: Dataset, exc: DatagroveError, detail: str | None = None
    ) -> None:
        self._audit.record(
            actor,
            action,
            object_type="DATASET",
            object_id=dataset.id,
            object_name=dataset.name,
            outcome="denied" if isinstance(exc, Forbidden) else "failure",
            detail=f"{detail}: {exc.message}" if detail else exc.message,
        )
