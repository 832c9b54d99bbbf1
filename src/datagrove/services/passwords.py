"""Passwords for people signing in to the web interface: Argon2id hashes (argon2-cffi), never the text.

Rules: a password is 8 to 1024 characters; an admin (``MANAGE_USERS``) may set anyone's, every user
their own. A user without a password (NULL hash) cannot sign in with one; developer tokens still work.
Setting a password is recorded in the activity log (never the password).
"""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from datagrove.catalog.web_sessions import WebSessionCatalog
from datagrove.domain import Actor, User
from datagrove.errors import BadRequest, NotFound
from datagrove.services.access import AccessControl, Action
from datagrove.services.audit import AuditLog

MIN_LENGTH = 8
MAX_LENGTH = 1024

_hasher = argon2.PasswordHasher()  # RFC 9106's second recommended parameters (Argon2id, 64 MiB)
# Verified against when the email is unknown, so that answering takes as long as for a known one.
_DUMMY_HASH = _hasher.hash("datagrove-no-such-user")


def acceptable(password: object) -> str:
    """``password`` if it may be used; a 400 naming the rule otherwise."""
    if not isinstance(password, str):
        raise BadRequest("password must be a string")
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise BadRequest(f"a password is {MIN_LENGTH} to {MAX_LENGTH} characters long")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(acceptable(password))


def matches(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``password_hash`` was made from (constant work when None)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class PasswordService:
    def __init__(self, *, sessions: WebSessionCatalog, access: AccessControl, audit: AuditLog) -> None:
        self._sessions = sessions
        self._access = access
        self._audit = audit

    def set_password(self, *, actor: Actor, user_id: int, password: str | None) -> None:
        """Give ``user_id`` this password (None removes it). Admins for anyone, users for themselves."""
        if user_id != actor.user.id:
            self._access.require(actor, Action.MANAGE_USERS)
        password_hash = None if password is None else hash_password(password)
        if not self._sessions.set_password_hash(user_id, password_hash):
            raise NotFound(f"user {user_id} does not exist")
        self._audit.record(
            actor,
            "user.password" if password is not None else "user.password_removed",
            object_type="USER",
            object_id=user_id,
        )

    def check(self, *, email: str, password: str) -> User | None:
        """The user if ``password`` is its password; None otherwise (unknown email, no password)."""
        found = self._sessions.user_with_password_hash(email)
        password_hash = found[1] if found is not None else None
        if not matches(password_hash, password) or found is None:
            return None
        return found[0]
