"""Accounts: where a connector's credentials live. Used by ``/v1/accounts``, the product API's
account reads, the CLI, stream creation and the run engine.

Rules (access itself is decided by ``AccessControl.decide_account``):

* Credentials are a JSON object of string values (numbers and booleans are taken as their text,
  nested objects and lists as their JSON text). They are sealed whole with ``SecretBox`` (bound to
  ``account:<id>``) before they reach the catalog, and leave this module only through ``usable``:
  no view, error message, log line or activity-log entry holds a value. Views carry the credential
  names only; the API shows each value as ``MASK``.
* Updating merges: a credential sent with a new value replaces it, one sent as ``MASK`` (what a
  client read back) keeps the stored value, one sent as ``null`` is removed; others stay.
* Creating needs a role that may create datasets. The owner and admins may do everything; CAN_VIEW
  (to a user or its active groups) lets one see the account and use it in a stream, CAN_EDIT also
  change it. Only the owner and admins delete and share. An account one may not see is a 404.
* Sharing only ever raises a principal's level (like dataset sharing); levels are CAN_VIEW and
  CAN_EDIT. Creates, updates, deletes, shares and refused attempts go to the activity log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from datagrove.catalog.accounts import AccountCatalog, StoredAccount
from datagrove.catalog.repository import Catalog
from datagrove.crypto import SecretBox, SecretKeyError
from datagrove.domain import AccessLevel, Account, AccountGrant, Actor, Group, PrincipalType, Role
from datagrove.errors import BadRequest, DatagroveError, Forbidden, NotFound
from datagrove.services.access import AccessControl, Action
from datagrove.services.audit import AuditLog

log = logging.getLogger("datagrove.accounts")

#: How every credential value is shown. Sent back unchanged in an update, it keeps the stored value.
MASK = "********"
MAX_PAGE = 500
GRANTABLE = (AccessLevel.CAN_VIEW, AccessLevel.CAN_EDIT)


@dataclass(frozen=True)
class UsableAccount:
    """An account with its credentials in clear, for a connector run. Never render or log it: its
    ``repr`` leaves the values out, so an accidental log line or traceback does not leak them."""

    id: int
    type: str
    credentials: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class AccountAccess:
    """One line of an account's access list: the owner (OWNER) or a grant, with the principal's name."""

    principal_type: PrincipalType
    principal_id: int
    name: str
    level: AccessLevel


class GroupDirectory(Protocol):
    def get_group(self, group_id: int) -> Group: ...


def credential_values(value: Any, where: str) -> dict[str, str | None]:
    """``value`` as credentials (None values: remove that credential in an update); 400 naming
    ``where`` when it is not a JSON object. Messages name keys, never values."""
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be a JSON object of string values")
    found: dict[str, str | None] = {}
    for key, item in value.items():
        if not key.strip():
            raise BadRequest(f"{where} has an empty credential name")
        if item is None or isinstance(item, str):
            found[key] = item
        elif isinstance(item, bool):
            found[key] = "true" if item else "false"
        elif isinstance(item, int | float):
            found[key] = str(item)
        else:  # a nested object or list (e.g. http headers): kept as its JSON text
            found[key] = json.dumps(item, separators=(",", ":"))
    return found


def _clean(value: str, what: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise BadRequest(f"an account needs a non-empty {what}")
    if len(text) > limit:
        raise BadRequest(f"an account's {what} is at most {limit} characters")
    return text


class AccountService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        accounts: AccountCatalog,
        access: AccessControl,
        audit: AuditLog,
        box: SecretBox,
        groups: GroupDirectory,
    ) -> None:
        self._catalog = catalog
        self._accounts = accounts
        self._access = access
        self._audit = audit
        self._box = box
        self._groups = groups

    # --- reading --------------------------------------------------------------------------------

    def get(self, *, actor: Actor, account_id: int) -> Account:
        """The account, without credential values (404 when the actor may not see it)."""
        return self._view(self._stored(actor, account_id, Action.VIEW))

    def list_accounts(
        self, *, actor: Actor, limit: int, offset: int, sort: str | None = None
    ) -> list[Account]:
        """The accounts the actor may see (admins: all), ordered by id or ``sort`` (``name``, ...)."""
        self._access.require(actor, Action.LIST_ACCOUNTS)
        visible_to = None if actor.user.role is Role.ADMIN else actor.user.id
        stored = self._accounts.list_accounts(
            visible_to=visible_to,
            limit=max(0, min(limit, MAX_PAGE)),
            offset=max(0, offset),
            sort=sort or None,
        )
        return [self._view(account) for account in stored]

    def access_list(self, *, actor: Actor, account_id: int) -> list[AccountAccess]:
        """Who may use the account: its owner (OWNER) first, then the grants, users first."""
        stored = self._stored(actor, account_id, Action.VIEW)
        owner = AccountAccess(
            PrincipalType.USER,
            stored.owner_id,
            self._name(PrincipalType.USER, stored.owner_id),
            AccessLevel.OWNER,
        )
        return [owner] + [
            AccountAccess(
                g.principal_type, g.principal_id, self._name(g.principal_type, g.principal_id), g.level
            )
            for g in self._accounts.grants(stored.id)
        ]

    def usable(self, *, user_id: int, account_id: int) -> UsableAccount:
        """The account with its credentials, if ``user_id`` may use it (a stream's run-as user).
        NotFound when the user may not see it (or it does not exist), SecretKeyError when this
        server's key cannot open it; no message holds a credential."""
        user = self._catalog.get_user(user_id)
        actor = Actor(user=user, scopes=None, credential=f"run-as:{user_id}")
        stored = self._stored(actor, account_id, Action.USE)
        return UsableAccount(stored.id, stored.type, self._open(stored))

    # --- writing --------------------------------------------------------------------------------

    def create(
        self,
        *,
        actor: Actor,
        name: str,
        type: str,
        credentials: Mapping[str, str | None],
        valid: bool = True,
        owner_id: int | None = None,
    ) -> Account:
        """A new account owned by the actor, or by ``owner_id`` (admins only: the CLI's operator)."""
        self._access.require(actor, Action.CREATE_ACCOUNT)
        if owner_id is None:
            owner_id = actor.user.id
        elif owner_id != actor.user.id:
            self._access.require(actor, Action.CREATE_ACCOUNT_FOR_OTHERS)
            self._catalog.get_user(owner_id)  # 404 naming the user
        name, type = _clean(name, "name", 255), _clean(type, "type", 128)
        values = {key: value for key, value in credentials.items() if value is not None}
        masked = sorted(key for key, value in values.items() if value == MASK)
        if masked:
            raise BadRequest(
                f"credential {masked[0]!r} has the mask {MASK!r} as its value; send the real value"
            )
        stored = self._accounts.create(
            name=name,
            type=type,
            owner_id=owner_id,
            valid=valid,
            seal=lambda account_id: self._seal(account_id, values),
        )
        self._audit.record(
            actor,
            "account.create",
            object_type="ACCOUNT",
            object_id=stored.id,
            object_name=stored.name,
            detail=f"type {stored.type}; credentials: {', '.join(sorted(values)) or 'none'}",
        )
        return self._view(stored)

    def update(
        self,
        *,
        actor: Actor,
        account_id: int,
        name: str | None = None,
        valid: bool | None = None,
        type: str | None = None,
        credentials: Mapping[str, str | None] | None = None,
    ) -> Account:
        """Change what is given, merging ``credentials`` (see the module's rules). The type cannot
        change (streams rely on it): sending the current one is accepted, another is a 400."""
        stored = self._stored(actor, account_id, Action.VIEW)
        self._guard(actor, "account.update", stored, Action.EDIT)
        if type is not None and type.strip() != stored.type:
            raise BadRequest(f"an account's type cannot be changed (it is {stored.type!r})")
        name = None if name is None else _clean(name, "name", 255)
        sealed: str | None = None
        changed_keys: list[str] = []
        if credentials:
            current = self._open(stored)
            merged = dict(current)
            for key, value in credentials.items():
                if value == MASK:
                    if key not in current:
                        raise BadRequest(
                            f"credential {key!r} is not stored, so it cannot keep its value ({MASK})"
                        )
                    continue
                if value is None:
                    if merged.pop(key, None) is not None:
                        changed_keys.append(key)
                elif current.get(key) != value:
                    merged[key] = value
                    changed_keys.append(key)
            if changed_keys:
                sealed = self._seal(stored.id, merged)
        updated = self._accounts.update(
            stored.id,
            name=name,
            valid=valid,
            credentials=sealed,
            expected_credentials=stored.credentials,
        )
        changes = []
        if name is not None:
            changes.append(f"name {updated.name!r}")
        if valid is not None:
            changes.append(f"valid {valid}")
        if changed_keys:
            changes.append(f"credentials: {', '.join(sorted(changed_keys))}")
        self._audit.record(
            actor,
            "account.update",
            object_type="ACCOUNT",
            object_id=updated.id,
            object_name=updated.name,
            detail="; ".join(changes) or "no change",
        )
        return self._view(updated)

    def delete(self, *, actor: Actor, account_id: int) -> None:
        """Delete the account and its grants (owner and admins; 409 while a stream uses it)."""
        stored = self._stored(actor, account_id, Action.VIEW)
        self._guard(actor, "account.delete", stored, Action.DELETE)
        self._accounts.delete(stored.id)
        self._audit.record(
            actor, "account.delete", object_type="ACCOUNT", object_id=stored.id, object_name=stored.name
        )

    def share(
        self,
        *,
        actor: Actor,
        account_id: int,
        principal_type: PrincipalType,
        principal_id: int,
        level: AccessLevel = AccessLevel.CAN_VIEW,
    ) -> list[AccountAccess]:
        """Grant the user or group ``level`` (CAN_VIEW or CAN_EDIT); a higher level it already
        holds stays. Owner and admins only; 400 for an unknown principal. Returns the access list."""
        stored = self._stored(actor, account_id, Action.VIEW)
        self._guard(actor, "account.share", stored, Action.SHARE)
        if level not in GRANTABLE:
            raise BadRequest(f"an account is shared with CAN_VIEW or CAN_EDIT, not {level.value}")
        name = self._lookup(principal_type, principal_id)
        if name is None:
            raise BadRequest(f"{principal_type.value.lower()} {principal_id} does not exist")
        held = next(
            (
                g.level
                for g in self._accounts.grants(stored.id)
                if g.principal_type is principal_type and g.principal_id == principal_id
            ),
            None,
        )
        is_owner = principal_type is PrincipalType.USER and principal_id == stored.owner_id
        if not is_owner and (held is None or held.rank < level.rank):  # the owner needs no grant
            self._accounts.grant(AccountGrant(stored.id, principal_type, principal_id, level))
            self._audit.record(
                actor,
                "account.share",
                object_type="ACCOUNT",
                object_id=stored.id,
                object_name=stored.name,
                detail=f"{principal_type.value} {principal_id} ({name}): {level.value}",
            )
        return self.access_list(actor=actor, account_id=stored.id)

    # --- helpers --------------------------------------------------------------------------------

    def _stored(self, actor: Actor, account_id: int, action: Action) -> StoredAccount:
        """The account if the actor may do ``action`` on it; 404 when it may not see it."""
        try:
            stored = self._accounts.get(account_id)
        except NotFound:
            if action is not Action.USE:
                self._access.require(actor, Action.LIST_ACCOUNTS)  # a token without the scope: 403
            raise
        self._access.require_account(
            actor,
            action,
            account_id=stored.id,
            owner_id=stored.owner_id,
            levels=self._accounts.levels(stored.id, actor.user.id),
        )
        return stored

    def _guard(self, actor: Actor, what: str, stored: StoredAccount, action: Action) -> None:
        """``require_account``, with a refusal recorded in the activity log."""
        try:
            self._access.require_account(
                actor,
                action,
                account_id=stored.id,
                owner_id=stored.owner_id,
                levels=self._accounts.levels(stored.id, actor.user.id),
            )
        except DatagroveError as exc:
            self._audit.record(
                actor,
                what,
                object_type="ACCOUNT",
                object_id=stored.id,
                object_name=stored.name,
                outcome="denied" if isinstance(exc, Forbidden) else "failure",
                detail=exc.message,
            )
            raise

    def _seal(self, account_id: int, credentials: Mapping[str, str]) -> str | None:
        if not credentials:
            return None
        return self._box.seal(json.dumps(dict(credentials), sort_keys=True), context=f"account:{account_id}")

    def _open(self, stored: StoredAccount) -> dict[str, str]:
        if stored.credentials is None:
            return {}
        opened: dict[str, str] = json.loads(
            self._box.open(stored.credentials, context=f"account:{stored.id}")
        )
        return opened

    def _view(self, stored: StoredAccount) -> Account:
        try:
            keys = tuple(sorted(self._open(stored)))
        except SecretKeyError:
            # Shown without credential names rather than failing every list; using it will fail
            # with the clear error (the key changed), and the log says so once per read.
            log.warning("an account's credentials cannot be opened", extra={"fields": {"account": stored.id}})
            keys = ()
        return Account(
            id=stored.id,
            name=stored.name,
            type=stored.type,
            owner_id=stored.owner_id,
            valid=stored.valid,
            credential_keys=keys,
            created_at=stored.created_at,
            modified_at=stored.modified_at,
        )

    def _name(self, principal_type: PrincipalType, principal_id: int) -> str:
        return self._lookup(principal_type, principal_id) or ""

    def _lookup(self, principal_type: PrincipalType, principal_id: int) -> str | None:
        try:
            if principal_type is PrincipalType.USER:
                return self._catalog.get_user(principal_id).name
            return self._groups.get_group(principal_id).name
        except NotFound:
            return None
