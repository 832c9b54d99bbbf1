"""The one place that decides who may do what: ``AccessControl.decide(actor, action, dataset)``.

Routes and services call ``require``; nothing re-implements a check. The rules:

* An OAuth token reaches only what its scopes allow: ``data`` datasets and streams, ``user`` users,
  groups and developer tokens, ``audit`` the activity log. Developer tokens carry every scope.
* Roles (Domo's defaults): ``Admin`` may do everything and holds OWNER on every dataset;
  ``Privileged`` and ``Editor`` may create datasets and streams; ``Participant`` sees only what is
  shared with it. Managing users and groups and reading the activity log is for admins.
* On a dataset, a user's level is the highest of its own grant and its active groups' grants:
  CAN_VIEW (metadata, export, query) < CAN_EDIT (import, streams, executions) < CAN_SHARE (grant up
  to one's own level) < CO_OWNER (delete, revoke or lower anyone, policies) < OWNER.
* A dataset the actor may not even view answers 404, never 403, so its existence does not leak.
* A stream whose dataset was deleted (a tombstone) is seen only by admins and by the user who owned
  the dataset when it was deleted (grants went with the dataset); everyone else gets 404.
* Accounts (a connector's credentials; OAuth scope ``account``): ``decide_account``. Admins and the
  account's owner may do everything; a CAN_VIEW grant (to the user or an active group of it) lets one
  see the account and use it in a stream, CAN_EDIT also change it; deleting and sharing are the
  owner's and admins'. Creating one is for the roles that may create datasets. An account one may
  not see answers 404.

Nothing is cached: a revoke takes effect on the very next request.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

from datagrove.catalog.permissions import PermissionCatalog
from datagrove.domain import AccessLevel, Actor, Dataset, DeletedDataset, Role
from datagrove.errors import Forbidden, NotFound


class Action(enum.StrEnum):
    # Not about one dataset.
    CREATE_DATASET = "create_dataset"
    LIST_DATASETS = "list_datasets"
    VIEW_PEOPLE = "view_people"
    MANAGE_USERS = "manage_users"
    MANAGE_GROUPS = "manage_groups"
    READ_AUDIT = "read_audit"
    MANAGE_OWN_TOKENS = "manage_own_tokens"
    MANAGE_ANY_TOKENS = "manage_any_tokens"
    # About one dataset (and its stream, executions and policies).
    VIEW = "view"
    EDIT = "edit"
    SHARE = "share"
    DELETE = "delete"
    REVOKE = "revoke"
    MANAGE_POLICIES = "manage_policies"
    # Accounts: creating and listing them, and (with ``decide_account``) one account. USE is
    # naming it in a connector stream, the run engine acting as the stream's run-as user.
    CREATE_ACCOUNT = "create_account"
    CREATE_ACCOUNT_FOR_OTHERS = "create_account_for_others"  # naming another user as its owner
    LIST_ACCOUNTS = "list_accounts"
    USE = "use"


SCOPE_OF = {
    Action.CREATE_DATASET: "data",
    Action.LIST_DATASETS: "data",
    Action.VIEW_PEOPLE: "user",
    Action.MANAGE_USERS: "user",
    Action.MANAGE_GROUPS: "user",
    Action.READ_AUDIT: "audit",
    Action.MANAGE_OWN_TOKENS: "user",
    Action.MANAGE_ANY_TOKENS: "user",
    Action.CREATE_ACCOUNT: "account",
    Action.CREATE_ACCOUNT_FOR_OTHERS: "account",
    Action.LIST_ACCOUNTS: "account",
}

LEVEL_NEEDED = {
    Action.VIEW: AccessLevel.CAN_VIEW,
    Action.EDIT: AccessLevel.CAN_EDIT,
    Action.SHARE: AccessLevel.CAN_SHARE,
    Action.DELETE: AccessLevel.CO_OWNER,
    Action.REVOKE: AccessLevel.CO_OWNER,
    Action.MANAGE_POLICIES: AccessLevel.CO_OWNER,
}

DATASET_CREATORS = frozenset({Role.ADMIN, Role.PRIVILEGED, Role.EDITOR})
# What a grant on an account allows; everything else (DELETE, SHARE) is the owner's and admins'.
ACCOUNT_LEVEL_NEEDED = {
    Action.VIEW: AccessLevel.CAN_VIEW,
    Action.USE: AccessLevel.CAN_VIEW,
    Action.EDIT: AccessLevel.CAN_EDIT,
}
ACCOUNT_ACTIONS = frozenset({Action.VIEW, Action.USE, Action.EDIT, Action.SHARE, Action.DELETE})
ADMIN_ONLY = frozenset(
    {
        Action.MANAGE_USERS,
        Action.MANAGE_GROUPS,
        Action.READ_AUDIT,
        Action.MANAGE_ANY_TOKENS,
        Action.CREATE_ACCOUNT_FOR_OTHERS,
    }
)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


class AccessControl:
    def __init__(self, *, permissions: PermissionCatalog) -> None:
        self._permissions = permissions

    def level(self, actor: Actor, dataset: Dataset) -> AccessLevel | None:
        """The actor's effective level on the dataset (None: no access at all)."""
        if actor.user.role is Role.ADMIN:
            return AccessLevel.OWNER
        levels = self._permissions.levels(dataset.id, actor.user.id)
        return max(levels, key=lambda level: level.rank) if levels else None

    def decide(self, actor: Actor, action: Action, dataset: Dataset | None = None) -> Decision:
        scope = SCOPE_OF.get(action, "data")
        if not actor.has_scope(scope):
            return Decision(False, f"the token lacks the '{scope}' scope")
        if action in LEVEL_NEEDED:
            if dataset is None:
                raise ValueError(f"{action} needs a dataset")
            needed = LEVEL_NEEDED[action]
            level = self.level(actor, dataset)
            if level is not None and level.rank >= needed.rank:
                return Decision(True, f"{level.value} on the dataset")
            held = level.value if level else "no access"
            return Decision(False, f"{action.value} needs {needed.value} on the dataset; you have {held}")
        if actor.user.role is Role.ADMIN:
            return Decision(True, "admins may do anything")
        if action in ADMIN_ONLY:
            return Decision(False, f"{action.value} is for admins")
        if action is Action.CREATE_DATASET and actor.user.role not in DATASET_CREATORS:
            return Decision(False, f"role {actor.user.role.value} may not create datasets")
        if action is Action.CREATE_ACCOUNT and actor.user.role not in DATASET_CREATORS:
            return Decision(False, f"role {actor.user.role.value} may not create accounts")
        return Decision(True, f"role {actor.user.role.value} may {action.value}")

    def require(self, actor: Actor, action: Action, dataset: Dataset | None = None) -> None:
        """Raise unless allowed: 404 when the actor may not even view the dataset, else 403. A token
        without the needed scope gets 403 whatever the dataset: that answer says nothing about it."""
        decision = self.decide(actor, action, dataset)
        if decision.allowed:
            return
        scope = SCOPE_OF.get(action, "data")
        if not actor.has_scope(scope):
            raise Forbidden(decision.reason)
        if dataset is not None and not self.decide(actor, Action.VIEW, dataset).allowed:
            raise NotFound(f"dataset {dataset.id} does not exist")
        raise Forbidden(decision.reason)

    def decide_deleted(self, actor: Actor, deleted: DeletedDataset) -> Decision:
        """May the actor see (and delete) a stream whose dataset was deleted?"""
        if not actor.has_scope("data"):
            return Decision(False, "the token lacks the 'data' scope")
        if actor.user.role is Role.ADMIN:
            return Decision(True, "admins see every stream")
        if actor.user.id == deleted.owner_id:
            return Decision(True, "you owned its dataset when it was deleted")
        return Decision(False, "only admins and the deleted dataset's owner see this stream")

    def require_deleted(self, actor: Actor, deleted: DeletedDataset, what: str) -> None:
        """Raise unless ``decide_deleted`` allows: 403 for a token without the scope, else 404 naming
        ``what`` (as if it did not exist)."""
        decision = self.decide_deleted(actor, deleted)
        if decision.allowed:
            return
        if not actor.has_scope("data"):
            raise Forbidden(decision.reason)
        raise NotFound(f"{what} does not exist")

    def can_grant(self, actor: Actor, dataset: Dataset, level: AccessLevel) -> Decision:
        """Sharing: CAN_SHARE or more, and never a level above one's own."""
        own = self.level(actor, dataset)
        if own is None or own.rank < AccessLevel.CAN_SHARE.rank:
            return Decision(False, "sharing needs CAN_SHARE on the dataset")
        if level.rank > own.rank:
            return Decision(False, f"you hold {own.value} and cannot grant {level.value}")
        return Decision(True, f"{own.value} may grant {level.value}")

    def can_change(
        self, actor: Actor, dataset: Dataset, held: AccessLevel | None, level: AccessLevel | None
    ) -> Decision:
        """Setting a principal's level from ``held`` to ``level`` (None: no grant). Granting or raising
        follows the share rules (``can_grant``); lowering or removing someone's grant is a partial
        revoke, so it needs what a revoke needs (CO_OWNER or more)."""
        if level is not None and (held is None or level.rank >= held.rank):
            return self.can_grant(actor, dataset, level)
        own = self.level(actor, dataset)
        needed = LEVEL_NEEDED[Action.REVOKE]
        if own is None or own.rank < needed.rank:
            held_text = own.value if own else "no access"
            return Decision(False, f"lowering or removing a grant needs {needed.value}; you have {held_text}")
        return Decision(True, f"{own.value} may lower or remove grants")

    def sees_all_rows(self, actor: Actor, dataset: Dataset) -> bool:
        """Row-level policies bind everyone below CO_OWNER when the dataset has PDP enabled."""
        if not dataset.pdp_enabled:
            return True
        level = self.level(actor, dataset)
        return level is not None and level.rank >= AccessLevel.CO_OWNER.rank

    def group_ids(self, actor: Actor) -> list[int]:
        return self._permissions.group_ids(actor.user.id)

    # --- accounts -------------------------------------------------------------------------------

    def decide_account(
        self, actor: Actor, action: Action, *, owner_id: int, levels: Collection[AccessLevel]
    ) -> Decision:
        """May ``actor`` do ``action`` on an account owned by ``owner_id``, of which it holds
        ``levels`` (its own and its active groups' grants, ``AccountCatalog.levels``)?"""
        if action not in ACCOUNT_ACTIONS:
            raise ValueError(f"{action} is not an action on an account")
        # USE is checked for a stream's run-as user, not a request: no token, no scope.
        if action is not Action.USE and not actor.has_scope("account"):
            return Decision(False, "the token lacks the 'account' scope")
        if actor.user.role is Role.ADMIN:
            return Decision(True, "admins may do anything")
        if actor.user.id == owner_id:
            return Decision(True, "you own the account")
        best = max(levels, key=lambda level: level.rank) if levels else None
        needed = ACCOUNT_LEVEL_NEEDED.get(action)
        if needed is None:
            return Decision(False, f"only the account's owner and admins may {action.value} it")
        if best is not None and best.rank >= needed.rank:
            return Decision(True, f"{best.value} on the account")
        held = best.value if best else "no access"
        return Decision(False, f"{action.value} needs {needed.value} on the account; you have {held}")

    def require_account(
        self,
        actor: Actor,
        action: Action,
        *,
        account_id: int,
        owner_id: int,
        levels: Collection[AccessLevel],
    ) -> None:
        """Raise unless allowed: 404 when the actor may not even see the account (its existence
        does not leak), 403 otherwise (and for a token without the ``account`` scope)."""
        decision = self.decide_account(actor, action, owner_id=owner_id, levels=levels)
        if decision.allowed:
            return
        if action is not Action.USE and not actor.has_scope("account"):
            raise Forbidden(decision.reason)
        if not self.decide_account(actor, Action.USE, owner_id=owner_id, levels=levels).allowed:
            raise NotFound(f"account {account_id} does not exist")
        raise Forbidden(decision.reason)
