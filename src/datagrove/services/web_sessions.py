"""Web sign-in: sessions for people using the pages, their CSRF tokens, and failed sign-in limits.

* A session is a catalog row found by the SHA-256 digest of a random cookie value (256 bits), so
  it works on every node and the catalog holds nothing that could be presented as a cookie. It ends
  when it has been idle for ``idle_seconds``, ``max_seconds`` after sign-in, or at sign-out (the row
  is deleted: the cookie is worthless from the next request on).
* Each session has its own CSRF token; every state-changing web request must present it.
* Failed sign-ins are counted per email and per source address within ``window_seconds``; at the
  limit, sign-in is refused (429) without checking the password, until the oldest counted failure
  leaves the window (``services/failed_attempts.py``; the API's failures are counted apart). A
  successful sign-in forgets the email's failures. Every sign-in, failed or not, is recorded in the
  activity log with the source address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from datagrove.catalog.web_sessions import SessionRow, WebSessionCatalog
from datagrove.domain import Actor, User
from datagrove.errors import Unauthorized
from datagrove.services.audit import AuditLog
from datagrove.services.auth import Authenticator
from datagrove.services.failed_attempts import AttemptLimits, FailedAttempts
from datagrove.services.passwords import PasswordService

TOKEN_SIGN_IN = "(developer token)"  # noqa: S105 - the "email" failed token sign-ins are counted under


@dataclass(frozen=True)
class SessionSettings:
    idle_seconds: int
    max_seconds: int
    max_failures: int
    max_failures_per_address: int
    window_seconds: int

    @property
    def attempt_limits(self) -> AttemptLimits:
        return AttemptLimits(
            attempt="web sign-in",
            failures="sign-ins",
            object_type="USER",
            per_subject=self.max_failures,
            per_address=self.max_failures_per_address,
            window_seconds=self.window_seconds,
            subject_limit="sign_in_max_failures",
            address_limit="sign_in_max_failures_per_address",
        )


@dataclass(frozen=True)
class WebSession:
    """A signed-in person: the actor every service call is made as, and the session's CSRF token."""

    actor: Actor
    csrf_token: str
    expires_at: datetime

    @property
    def user(self) -> User:
        return self.actor.user


@dataclass(frozen=True)
class SignedIn:
    cookie_value: str  # shown to the browser once, stored only as a digest
    session: WebSession


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class WebSessions:
    def __init__(
        self,
        *,
        sessions: WebSessionCatalog,
        passwords: PasswordService,
        auth: Authenticator,
        audit: AuditLog,
        attempts: FailedAttempts,
        settings: SessionSettings,
    ) -> None:
        self._sessions = sessions
        self._attempts = attempts
        self._limits = settings.attempt_limits
        self._passwords = passwords
        self._auth = auth
        self._audit = audit
        self._settings = settings

    # --- signing in and out ---------------------------------------------------------------------

    def sign_in_with_password(self, *, email: str, password: str, source_address: str) -> SignedIn:
        """A new session for the user whose email and password these are; ``Unauthorized`` (one
        message for an unknown email and a wrong password) or ``TooManyRequests`` otherwise."""
        email = email.strip()
        self._refuse_when_limited(email, source_address)
        user = self._passwords.check(email=email, password=password)
        if user is None:
            self._failed(email, source_address, f"web sign-in refused for email {email[:320]!r}")
            raise Unauthorized("the email or password is not right")
        self._attempts.forget(self._limits, email)
        return self._start(user, "password", source_address, "web sign-in with a password")

    def sign_in_with_token(self, *, token: str, source_address: str) -> SignedIn:
        """A new session for the holder of a developer token (checked as the API checks it)."""
        self._refuse_when_limited(TOKEN_SIGN_IN, source_address)
        try:
            actor = self._auth.actor_from_developer_token(token.strip())
        except Unauthorized:
            # The authenticator has recorded the refusal in the activity log; count it here.
            self._failed(TOKEN_SIGN_IN, source_address, None)
            raise
        credential = actor.credential  # token:<id>
        return self._start(actor.user, credential, source_address, f"web sign-in with {credential}")

    def sign_out(self, cookie_value: str) -> None:
        self._sessions.delete_session(_digest(cookie_value))

    # --- using a session ------------------------------------------------------------------------

    def session(self, cookie_value: str | None) -> WebSession:
        """The live session this cookie value stands for; ``Unauthorized`` if none (an ended one is deleted)."""
        if not cookie_value:
            raise Unauthorized("sign in first")
        id_digest = _digest(cookie_value)
        row = self._sessions.find_session(id_digest)
        now = _now()
        if row is None:
            raise Unauthorized("your session has ended; sign in again")
        if self._ended(row, now):
            self._sessions.delete_session(id_digest)
            raise Unauthorized("your session has ended; sign in again")
        if not self._credential_live(row.credential):
            self._sessions.delete_session(id_digest)
            raise Unauthorized(
                "the developer token you signed in with was revoked or has expired; sign in again"
            )
        self._sessions.touch_session(id_digest, now)
        return _web_session(row)

    @staticmethod
    def csrf_ok(session: WebSession, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(session.csrf_token, presented or "")

    # --- internals ------------------------------------------------------------------------------

    def _start(self, user: User, credential: str, source_address: str, detail: str) -> SignedIn:
        now = _now()
        self._sessions.delete_sessions_ended(
            expired_before=now, idle_before=now - timedelta(seconds=self._settings.idle_seconds)
        )
        cookie_value = secrets.token_urlsafe(32)
        csrf_token = secrets.token_urlsafe(32)
        expires_at = now + timedelta(seconds=self._settings.max_seconds)
        self._sessions.create_session(
            id_digest=_digest(cookie_value),
            user_id=user.id,
            csrf_token=csrf_token,
            credential=credential[:64],
            now=now,
            expires_at=expires_at,
            source_address=source_address[:64],
        )
        actor = Actor(user=user, scopes=None, credential=f"web:{credential}")
        self._audit.record(
            actor,
            "login",
            object_type="USER",
            object_id=user.id,
            object_name=user.name,
            detail=detail,
            ip_address=source_address,
        )
        return SignedIn(cookie_value, WebSession(actor, csrf_token, expires_at))

    def _credential_live(self, credential: str) -> bool:
        """A session started with a developer token ends with it: a revoke takes effect on the very
        next page, as it does for the API. A password session has nothing further to check."""
        kind, _, token_id = credential.partition(":")
        return kind != "token" or (token_id.isdigit() and self._auth.developer_token_live(int(token_id)))

    def _ended(self, row: SessionRow, now: datetime) -> bool:
        idle_until = row.last_seen_at + timedelta(seconds=self._settings.idle_seconds)
        return now >= row.expires_at or now >= idle_until

    def _refuse_when_limited(self, email: str, source_address: str) -> None:
        self._attempts.refuse_when_limited(self._limits, subject=email, source_address=source_address)

    def _failed(self, email: str, source_address: str, detail: str | None) -> None:
        self._attempts.failed(self._limits, subject=email, source_address=source_address)
        if detail is not None:
            self._audit.record(
                None, "login", object_type="USER", outcome="failure", detail=detail, ip_address=source_address
            )


def _web_session(row: SessionRow) -> WebSession:
    actor = Actor(user=row.user, scopes=None, credential=f"web:{row.credential}")
    return WebSession(actor, row.csrf_token, row.expires_at)
