"""Failed authentications, counted and limited: brute force is slowed and audited.

Every way of authenticating records its failures in one place (``catalog/auth_failures.py``, in the
catalog so that every node counts the same): web sign-ins with a password or a developer token
(``services/web_sessions.py``), the OAuth token endpoint, and API requests with a developer token.
A failure is counted under a *subject* (an email, an OAuth client id) and its source address. Each
way has its own limits (``AttemptLimits``); at a limit the attempt is refused with 429 and the time
to wait *before* its secret is checked, so guessing stops paying until enough counted failures
have left the window. The API's failures (token endpoint, developer tokens) are counted together
per address, and apart from the web sign-in's, so that neither can lock the other out: a guessing
client of the API does not stop people signing in on the pages, nor the other way round.

Only wrong credentials count (``errors.BadCredential``): an expired token is a client's everyday
refresh, not an attack.

Developer tokens are checked on every API request, which must stay cheap, so the catalog is not
asked before each one. Instead, when a failure from an address brings it to its limit, this process
remembers the address as blocked until the limit frees up, and refuses its developer tokens —
right or wrong — without a catalog query. Another node learns of the block from the catalog's
count at its own first failure from that address.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from datagrove.catalog.auth_failures import AuthFailureCatalog
from datagrove.domain import Actor
from datagrove.errors import BadCredential, TooManyRequests
from datagrove.services.audit import AuditLog
from datagrove.services.auth import Authenticator, Credential, TokenGrant

#: The start of every subject the API's failures are counted under (web sign-ins: the bare email).
API = "(api) "
#: The subject unknown developer tokens on API requests are counted under (a wrong token names no one).
DEVELOPER_TOKEN = "developer token"  # noqa: S105 - a label, not a secret
#: The prefix of the subject failed token requests are counted under (then the client id).
OAUTH_CLIENT = "oauth client "


@dataclass(frozen=True)
class AttemptLimits:
    """The limits on one way of authenticating, and how its refusals read.

    ``per_subject`` None: failures are limited per source address only. ``subject_limit`` and
    ``address_limit`` name the settings, so a refusal says which limit was reached.
    """

    attempt: str  # what is refused, for the activity log: "web sign-in", "OAuth token request"
    failures: str  # what is counted, as a refusal says it: "sign-ins", "client authentications"
    object_type: str  # the activity log's object type for a refusal
    per_subject: int | None
    per_address: int
    window_seconds: int
    subject_limit: str
    address_limit: str
    api: bool = False  # the API's failures, counted apart from the web sign-in's


def _now() -> datetime:
    return datetime.now(UTC)


class FailedAttempts:
    def __init__(self, *, failures: AuthFailureCatalog, audit: AuditLog, keep_seconds: int) -> None:
        """``keep_seconds``: failures older than this are pruned (the longest window of any way)."""
        self._failures = failures
        self._audit = audit
        self._keep = timedelta(seconds=keep_seconds)
        self._blocked: dict[str, datetime] = {}  # source address -> blocked until (developer tokens)
        self._lock = threading.Lock()

    def refuse_when_limited(self, limits: AttemptLimits, *, subject: str, source_address: str) -> None:
        """Raise ``TooManyRequests`` (audited) if ``subject`` or ``source_address`` is at its limit."""
        now = _now()
        since = now - timedelta(seconds=limits.window_seconds)
        if limits.per_subject is not None:
            failures = self._failures.failures_since(since=since, subject=_stored(limits, subject))
            if len(failures) >= limits.per_subject:
                raise self._refusal(
                    limits, failures, limits.per_subject, limits.subject_limit, now, subject, source_address
                )
        failures = self._from(limits, source_address, since)
        if len(failures) >= limits.per_address:
            raise self._refusal(
                limits, failures, limits.per_address, limits.address_limit, now, subject, source_address
            )

    def failed(self, limits: AttemptLimits, *, subject: str, source_address: str) -> None:
        """Count one failure of ``subject`` from ``source_address`` (and forget those past keeping)."""
        now = _now()
        self._failures.forget_failures(before=now - self._keep)
        self._failures.record_failure(subject=_stored(limits, subject), source_address=source_address, at=now)

    def forget(self, limits: AttemptLimits, subject: str) -> None:
        """Forget ``subject``'s failures (it has just authenticated)."""
        self._failures.forget_failures(subject=_stored(limits, subject))

    # --- developer tokens on API requests: no catalog query on the everyday path ---------------

    def refuse_when_blocked(self, limits: AttemptLimits, *, source_address: str) -> None:
        """Raise ``TooManyRequests`` if this process has seen ``source_address`` reach its limit and
        the limit has not freed up yet. A dictionary lookup: cheap enough for every request."""
        if not self._blocked:
            return
        now = _now()
        with self._lock:
            until = self._blocked.get(source_address)
            if until is not None and until <= now:
                del self._blocked[source_address]
                until = None
        if until is not None:
            wait = max(1, math.ceil((until - now).total_seconds()))
            raise TooManyRequests(
                _message(limits, limits.address_limit, limits.per_address, wait),
                limit=limits.address_limit,
                retryAfterSeconds=wait,
            )

    def token_failed(self, limits: AttemptLimits, *, source_address: str) -> None:
        """Count an unknown developer token from ``source_address``; once that brings the address to
        its limit, block it (this process) and raise ``TooManyRequests`` (audited)."""
        self.failed(limits, subject=DEVELOPER_TOKEN, source_address=source_address)
        now = _now()
        failures = self._from(limits, source_address, now - timedelta(seconds=limits.window_seconds))
        if len(failures) < limits.per_address:
            return
        refusal = self._refusal(
            limits, failures, limits.per_address, limits.address_limit, now, DEVELOPER_TOKEN, source_address
        )
        until = now + timedelta(seconds=refusal.details["retryAfterSeconds"])
        with self._lock:
            self._blocked = {address: at for address, at in self._blocked.items() if at > now}
            self._blocked[source_address] = until
        raise refusal

    # --- internals ------------------------------------------------------------------------------

    def _from(self, limits: AttemptLimits, source_address: str, since: datetime) -> list[datetime]:
        """The failures of ``limits``' way (the API's, or the web sign-in's) from ``source_address``."""
        if limits.api:
            return self._failures.failures_since(since=since, source_address=source_address, prefix=API)
        return self._failures.failures_since(since=since, source_address=source_address, not_prefix=API)

    def _refusal(
        self,
        limits: AttemptLimits,
        failures: list[datetime],
        limit: int,
        setting: str,
        now: datetime,
        subject: str,
        source_address: str,
    ) -> TooManyRequests:
        # Allowed again once enough failures have left the window to be under the limit.
        frees_at = failures[len(failures) - limit] + timedelta(seconds=limits.window_seconds)
        wait = max(1, math.ceil((frees_at - now).total_seconds()))
        self._audit.record(
            None,
            "login",
            object_type=limits.object_type,
            outcome="failure",
            ip_address=source_address,
            detail=f"{limits.attempt} refused for {subject[:320]!r}: too many failed {limits.failures} "
            f"({setting} = {limit})",
        )
        return TooManyRequests(_message(limits, setting, limit, wait), limit=setting, retryAfterSeconds=wait)


def _stored(limits: AttemptLimits, subject: str) -> str:
    return API + subject if limits.api else subject


def _message(limits: AttemptLimits, setting: str, limit: int, wait: int) -> str:
    return (
        f"too many failed {limits.failures}; try again in {duration(wait)} "
        f"(limit {setting}: {limit} in {limits.window_seconds} s)"
    )


def duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


@dataclass(frozen=True)
class ApiAttemptLimits:
    """The API's limits: failed token requests per OAuth client id, failed API authentications
    (token requests, unknown developer tokens) per source address, within one window."""

    per_client: int
    per_address: int
    window_seconds: int

    @property
    def token_endpoint(self) -> AttemptLimits:
        return AttemptLimits(
            attempt="OAuth token request",
            failures="client authentications",
            object_type="OAUTH_CLIENT",
            per_subject=self.per_client,
            per_address=self.per_address,
            window_seconds=self.window_seconds,
            subject_limit="auth_max_failures_per_client",
            address_limit="auth_max_failures_per_address",
            api=True,
        )

    @property
    def developer_tokens(self) -> AttemptLimits:
        return AttemptLimits(
            attempt="developer token",
            failures="authentications",
            object_type="ACCESS_TOKEN",
            per_subject=None,
            per_address=self.per_address,
            window_seconds=self.window_seconds,
            subject_limit="auth_max_failures_per_address",
            address_limit="auth_max_failures_per_address",
            api=True,
        )


class LimitedCredentials:
    """The API's credentials checked under the failed-attempt limits (``Authenticator`` checks them;
    this counts the wrong ones and refuses at the limits). Every API adapter authenticates here."""

    def __init__(self, *, auth: Authenticator, attempts: FailedAttempts, limits: ApiAttemptLimits) -> None:
        self._auth = auth
        self._attempts = attempts
        self._token_endpoint = limits.token_endpoint
        self._developer_tokens = limits.developer_tokens

    def grant(
        self, *, client_id: str, client_secret: str, requested_scopes: frozenset[str], source_address: str
    ) -> TokenGrant:
        """``Authenticator.grant``, refused (429) before the secret is checked while the client id or
        the address is at its limit; a wrong client id or secret counts against both."""
        subject = OAUTH_CLIENT + client_id
        self._attempts.refuse_when_limited(
            self._token_endpoint, subject=subject, source_address=source_address
        )
        try:
            return self._auth.grant(
                client_id=client_id,
                client_secret=client_secret,
                requested_scopes=requested_scopes,
                ip_address=source_address,
            )
        except BadCredential:
            self._attempts.failed(self._token_endpoint, subject=subject, source_address=source_address)
            raise

    def actor_for(self, credential: Credential, *, source_address: str) -> Actor:
        """``Authenticator.actor_for``; a developer token from a blocked address is refused (429)
        unchecked, and an unknown one is counted (``failed``)."""
        self.refuse_when_blocked(credential, source_address=source_address)
        try:
            return self._auth.actor_for(credential)
        except BadCredential:
            self.failed(credential, source_address=source_address)
            raise

    def refuse_when_blocked(self, credential: Credential, *, source_address: str) -> None:
        if credential.kind == "developer_token":
            self._attempts.refuse_when_blocked(self._developer_tokens, source_address=source_address)

    def failed(self, credential: Credential, *, source_address: str) -> None:
        """Count a wrong ``credential`` (a developer token: a bearer token is signed, so guessing one
        is hopeless, and a bad one is most often merely stale); 429 once that reaches the limit."""
        if credential.kind == "developer_token":
            self._attempts.token_failed(self._developer_tokens, source_address=source_address)
