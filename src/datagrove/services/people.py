"""People: users, groups and membership. Used by the ``/v1/users`` and ``/v1/groups`` routes and the CLI.

Rules (access itself is decided by ``AccessControl``):

* Reading users and groups needs ``VIEW_PEOPLE`` (any role, OAuth scope ``user``); anyone may read
  their own user, whatever their token's scopes. Writes need ``MANAGE_USERS`` or ``MANAGE_GROUPS``
  (admins), and every write is recorded in the activity log.
* Emails are unique ignoring case (409 otherwise); group names are unique (409).
* Nobody deletes themself or changes their own role (400): the last admin cannot lock everyone out.
* A user who still owns datasets is not deleted (409, naming how many): ownership is never moved
  silently. Give the datasets another owner (``PUT /v1/datasets/{id}`` with ``owner.id``) first.
  Deleting a user removes its OAuth clients, developer tokens, group memberships, and dataset
  and account grants; a user who still owns accounts is not deleted (409) either.
* Deleting a group removes its memberships and the dataset and account grants made to it.
* Pages hold at most ``MAX_PAGE`` (500) records: the size pydomo asks for. Larger limits are clamped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datagrove.catalog.people import PeopleCatalog
from datagrove.catalog.repository import Catalog
from datagrove.domain import Actor, Group, Role, User
from datagrove.errors import BadRequest, Conflict
from datagrove.services.access import AccessControl, Action
from datagrove.services.audit import AuditLog

MAX_PAGE = 500


@dataclass(frozen=True)
class Person:
    """A user with the groups it belongs to, as the API shows it."""

    user: User
    groups: tuple[Group, ...]


def parse_role(value: Any) -> Role:
    """A role by name, ignoring case (``admin``, ``ADMIN``, ``Admin``); anything else is a 400."""
    if isinstance(value, str):
        for role in Role:
            if role.value.lower() == value.strip().lower():
                return role
    names = ", ".join(role.value for role in Role)
    raise BadRequest(f"role must be one of {names}, not {value!r}")


def _clean_name(value: str, what: str) -> str:
    name = value.strip()
    if not name:
        raise BadRequest(f"a {what} needs a non-empty name")
    if len(name) > 255:
        raise BadRequest(f"a {what} name is at most 255 characters")
    return name


def _clean_email(value: str) -> str:
    email = value.strip()
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or any(ch.isspace() for ch in email) or len(email) > 320:
        raise BadRequest(f"{value!r} is not an email address")
    return email


def _page(limit: int, offset: int) -> tuple[int, int]:
    return max(0, min(limit, MAX_PAGE)), max(0, offset)


class PeopleService:
    def __init__(
        self, *, catalog: Catalog, people: PeopleCatalog, access: AccessControl, audit: AuditLog
    ) -> None:
        self._catalog = catalog
        self._people = people
        self._access = access
        self._audit = audit

    # --- users --------------------------------------------------------------------------------

    def create_user(self, *, actor: Actor, name: str, email: str, role: Role = Role.PARTICIPANT) -> Person:
        self._access.require(actor, Action.MANAGE_USERS)
        name, email = _clean_name(name, "user"), _clean_email(email)
        self._refuse_taken_email(email)
        user = self._catalog.create_user(name=name, email=email, role=role)
        self._audit.record(actor, "user.create", object_type="USER", object_id=user.id, object_name=user.name)
        return Person(user, ())

    def get_user(self, *, actor: Actor, user_id: int) -> Person:
        if user_id != actor.user.id:
            self._access.require(actor, Action.VIEW_PEOPLE)
        return self._person(self._catalog.get_user(user_id))

    def list_users(self, *, actor: Actor, limit: int, offset: int) -> list[Person]:
        self._access.require(actor, Action.VIEW_PEOPLE)
        limit, offset = _page(limit, offset)
        users = self._catalog.list_users(limit=limit, offset=offset)
        groups = self._people.memberships(user.id for user in users)
        return [Person(user, tuple(groups.get(user.id, ()))) for user in users]

    def update_user(
        self,
        *,
        actor: Actor,
        user_id: int,
        name: str | None = None,
        email: str | None = None,
        role: Role | None = None,
    ) -> Person:
        """Change any of name, email and role; ``None`` leaves a field as it is."""
        self._access.require(actor, Action.MANAGE_USERS)
        current = self._catalog.get_user(user_id)
        if role is not None and role is not current.role and user_id == actor.user.id:
            raise BadRequest("you cannot change your own role")
        name = None if name is None else _clean_name(name, "user")
        email = None if email is None else _clean_email(email)
        if email is not None and email.lower() != current.email.lower():
            self._refuse_taken_email(email)
        changed = [
            field
            for field, new, old in (
                ("name", name, current.name),
                ("email", email, current.email),
                ("role", role, current.role),
            )
            if new is not None and new != old
        ]
        if not changed:
            return self._person(current)
        user = self._people.update_user(user_id, name=name, email=email, role=role)
        self._audit.record(
            actor,
            "user.update",
            object_type="USER",
            object_id=user.id,
            object_name=user.name,
            detail=", ".join(changed),
        )
        return self._person(user)

    def delete_user(self, *, actor: Actor, user_id: int) -> None:
        self._access.require(actor, Action.MANAGE_USERS)
        if user_id == actor.user.id:
            raise BadRequest("you cannot delete yourself")
        user = self._catalog.get_user(user_id)
        self._people.delete_user(user_id)
        self._audit.record(actor, "user.delete", object_type="USER", object_id=user_id, object_name=user.name)

    def _person(self, user: User) -> Person:
        return Person(user, tuple(self._people.memberships([user.id]).get(user.id, ())))

    def _refuse_taken_email(self, email: str) -> None:
        if self._people.email_owner(email) is not None:
            raise Conflict(f"a user with email {email!r} already exists")

    # --- groups -------------------------------------------------------------------------------

    def create_group(self, *, actor: Actor, name: str, active: bool = True, default: bool = False) -> Group:
        self._access.require(actor, Action.MANAGE_GROUPS)
        group = self._people.create_group(
            name=_clean_name(name, "group"), active=active, default=default, creator_id=actor.user.id
        )
        self._audit.record(
            actor, "group.create", object_type="GROUP", object_id=group.id, object_name=group.name
        )
        return group

    def get_group(self, *, actor: Actor, group_id: int) -> Group:
        self._access.require(actor, Action.VIEW_PEOPLE)
        return self._people.get_group(group_id)

    def list_groups(self, *, actor: Actor, limit: int, offset: int) -> list[Group]:
        self._access.require(actor, Action.VIEW_PEOPLE)
        limit, offset = _page(limit, offset)
        return self._people.list_groups(limit=limit, offset=offset)

    def update_group(
        self,
        *,
        actor: Actor,
        group_id: int,
        name: str | None = None,
        active: bool | None = None,
        default: bool | None = None,
    ) -> Group:
        """Change any of name, active and default; ``None`` leaves a field as it is."""
        self._access.require(actor, Action.MANAGE_GROUPS)
        name = None if name is None else _clean_name(name, "group")
        group = self._people.update_group(group_id, name=name, active=active, default=default)
        changed = [
            key
            for key, value in (("name", name), ("active", active), ("default", default))
            if value is not None
        ]
        self._audit.record(
            actor,
            "group.update",
            object_type="GROUP",
            object_id=group.id,
            object_name=group.name,
            detail=", ".join(changed) or None,
        )
        return group

    def delete_group(self, *, actor: Actor, group_id: int) -> None:
        self._access.require(actor, Action.MANAGE_GROUPS)
        group = self._people.get_group(group_id)
        self._people.delete_group(group_id)
        self._audit.record(
            actor, "group.delete", object_type="GROUP", object_id=group_id, object_name=group.name
        )

    # --- membership ---------------------------------------------------------------------------

    def add_member(self, *, actor: Actor, group_id: int, user_id: int) -> None:
        """Idempotent: adding a member twice is not an error. Unknown group or user: 404."""
        self._access.require(actor, Action.MANAGE_GROUPS)
        group = self._people.get_group(group_id)
        user = self._catalog.get_user(user_id)
        if self._people.add_member(group_id, user_id):
            self._audit.record(
                actor,
                "group.add_user",
                object_type="GROUP",
                object_id=group_id,
                object_name=group.name,
                detail=f"user {user.id} ({user.email})",
            )

    def remove_member(self, *, actor: Actor, group_id: int, user_id: int) -> None:
        """Idempotent: removing a non-member is not an error. Unknown group or user: 404."""
        self._access.require(actor, Action.MANAGE_GROUPS)
        group = self._people.get_group(group_id)
        user = self._catalog.get_user(user_id)
        if self._people.remove_member(group_id, user_id):
            self._audit.record(
                actor,
                "group.remove_user",
                object_type="GROUP",
                object_id=group_id,
                object_name=group.name,
                detail=f"user {user.id} ({user.email})",
            )

    def member_ids(self, *, actor: Actor, group_id: int, limit: int = MAX_PAGE, offset: int = 0) -> list[int]:
        self._access.require(actor, Action.VIEW_PEOPLE)
        self._people.get_group(group_id)  # NotFound for an unknown group, not an empty list
        limit, offset = _page(limit, offset)
        return self._people.member_ids(group_id, limit=limit, offset=offset)
