"""Credentials: OAuth client-credentials grants, signed access tokens and developer tokens.

Client secrets and developer tokens are random, high-entropy strings, so they are stored as
SHA-256 digests (a slow password hash would add nothing but latency on every request). Access
tokens are HS256 JWTs carrying ``exp``, signed with a key that lives in the catalog (or the
``signing_key`` setting), so they survive restarts and work on every node.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from datagrove.catalog.repository import Catalog
from datagrove.domain import ALL_SCOPES, AccessToken, Actor, OAuthClient, Role, User
from datagrove.errors import BadCredential, BadRequest, NotFound, Unauthorized
from datagrove.services.access import AccessControl, Action
from datagrove.services.audit import AuditLog

DEVELOPER_TOKEN_PREFIX = "DDCI"  # noqa: S105 - a prefix, not a secret
# pydomo sends a request with a token that may expire in flight and never retries a 401.
EXPIRY_LEEWAY_SECONDS = 10
VERIFIED_TOKENS_KEPT = 10_000  # bearer tokens whose signature is known good (then forgotten at once)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def parse_scopes(text: str | None) -> frozenset[str]:
    """Scopes from ``data user`` / ``data+user`` / ``data,user``; unknown ones are an error."""
    scopes = frozenset((text or "").replace("+", " ").replace(",", " ").split())
    unknown = scopes - ALL_SCOPES
    if unknown:
        raise BadRequest(
            f"unknown scope {sorted(unknown)[0]!r}; known scopes: {', '.join(sorted(ALL_SCOPES))}"
        )
    return scopes


@dataclass(frozen=True)
class Credential:
    """What a request presented, not yet checked: a bearer access token or a developer token."""

    kind: str  # "bearer" or "developer_token"
    value: str


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    expires_in: int
    scopes: frozenset[str]
    user: User
    jti: str


class Authenticator:
    def __init__(
        self,
        *,
        catalog: Catalog,
        signing_key: str,
        token_lifetime: int,
        customer: str,
        access: AccessControl | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        """``access`` is needed by the token-management methods; ``audit`` records refused logins."""
        self._catalog = catalog
        self._access = access
        self._audit = audit
        self._key = signing_key
        self._lifetime = token_lifetime
        self.customer = customer
        self._verified: dict[str, dict[str, Any]] = {}  # bearer token -> its checked claims

    # --- OAuth --------------------------------------------------------------------------------

    def grant(
        self,
        *,
        client_id: str,
        client_secret: str,
        requested_scopes: frozenset[str],
        ip_address: str | None = None,
    ) -> TokenGrant:
        """A token for a client-credentials grant; the scopes are the requested ones (all if none).
        A refused grant is recorded in the activity log with the client id (never the secret)."""
        client = self._catalog.get_oauth_client(client_id)
        if client is None or not hmac.compare_digest(client.secret_hash, digest(client_secret)):
            self._login_failed(
                f"client_credentials grant refused for client id {client_id[:128]!r}",
                object_type="OAUTH_CLIENT",
                object_id=client_id[:64],
                ip_address=ip_address,
            )
            raise BadCredential("invalid client credentials")
        scopes = requested_scopes or client.scopes
        if not scopes <= client.scopes:
            missing = ", ".join(sorted(scopes - client.scopes))
            raise BadRequest(f"the client is not allowed the scope(s): {missing}")
        user = self._catalog.get_user(client.user_id)
        now = int(time.time())
        jti = str(uuid.uuid4())
        claims = {
            "sub": str(user.id),
            "client_id": client.client_id,
            "scope": " ".join(sorted(scopes)),
            "role": user.role.value,
            "customer": self.customer,
            "iat": now,
            "exp": now + self._lifetime,
            "jti": jti,
        }
        token = jwt.encode(claims, self._key, algorithm="HS256")
        return TokenGrant(token, self._lifetime, scopes, user, jti)

    @property
    def reads_on_event_loop(self) -> bool:
        """Whether ``actor_for`` and other short reads may run on the event loop: the catalog
        answers them without waiting on the network or a lock (SQLite)."""
        return self._catalog.reads_block_briefly

    def begin_request(self, *, read_only: bool) -> None:
        """Read by one catalog version for the rest of the current request: what it reads may come
        from memory kept for that version, and a write anywhere makes the next request read again.
        ``read_only`` (a GET): datasets, streams, executions and permission levels too, not only
        who is calling. Call it where the request's context starts (the event loop)."""
        self._catalog.pin_request(cache_data=read_only)

    def actor_for(self, credential: Credential) -> Actor:
        """The actor a credential stands for; ``Unauthorized`` if it is unknown, expired or revoked."""
        if credential.kind == "bearer":
            return self.actor_from_bearer(credential.value)
        return self.actor_from_developer_token(credential.value)

    def actor_from_bearer(self, token: str) -> Actor:
        claims = self._verified_claims(token)
        # The client or user may have been removed since the token was issued.
        client = self._catalog.get_oauth_client(claims["client_id"])
        if client is None:
            raise Unauthorized("the access token's client no longer exists")
        user = self._existing_user(int(claims["sub"]))
        return Actor(
            user=user,
            scopes=frozenset(claims.get("scope", "").split()),
            credential=f"oauth:{client.client_id}",
        )

    def _verified_claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature and expiry are checked. A token whose signature
        checked out before is not checked again (the key does not change while the server runs),
        only its expiry: a client presents the same token for an hour of requests."""
        claims = self._verified.get(token)
        if claims is not None:
            if claims["exp"] + EXPIRY_LEEWAY_SECONDS < time.time():
                raise Unauthorized("the access token has expired")
            return claims
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                leeway=EXPIRY_LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "client_id"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the access token has expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("the access token is not valid") from exc
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    # --- developer tokens --------------------------------------------------------------------

    def actor_from_developer_token(self, token: str) -> Actor:
        found = self._catalog.find_token_holder(digest(token))
        if found is None:
            self._login_failed("unknown developer token", object_type="ACCESS_TOKEN")
            raise BadCredential("unknown developer token")
        record, user = found
        if _expired(record):
            self._login_failed(
                f"expired developer token {record.id}", object_type="ACCESS_TOKEN", object_id=record.id
            )
            raise Unauthorized("the developer token has expired")
        return Actor(user=user, scopes=None, credential=f"token:{record.id}")

    def known_actor(self, credential: Credential) -> Actor | None:
        """The actor of a good credential, else None, recording nothing: only reads, so that it may
        run on the event loop (``reads_on_event_loop``). A refusal goes through ``actor_for``, which
        records it (a write, that may wait for the catalog's lock)."""
        if credential.kind == "bearer":
            try:
                return self.actor_from_bearer(credential.value)
            except Unauthorized:
                return None
        found = self._catalog.find_token_holder(digest(credential.value))
        if found is None or _expired(found[0]):
            return None
        return Actor(user=found[1], scopes=None, credential=f"token:{found[0].id}")

    def developer_token_live(self, token_id: int) -> bool:
        """Whether developer token ``token_id`` still exists and has not expired (a web session
        started with it lasts only as long as the token does)."""
        try:
            record = self._catalog.get_access_token(token_id)
        except NotFound:
            return False
        return record.expires_at is None or record.expires_at > datetime.now(UTC)

    def _login_failed(
        self,
        detail: str,
        *,
        object_type: str,
        object_id: object = None,
        ip_address: str | None = None,
    ) -> None:
        if self._audit is not None:
            self._audit.record(
                None,
                "login",
                object_type=object_type,
                object_id=object_id,
                outcome="failure",
                detail=detail,
                ip_address=ip_address,
            )

    def _existing_user(self, user_id: int) -> User:
        try:
            return self._catalog.get_user(user_id)
        except NotFound as exc:
            raise Unauthorized("the credential's user no longer exists") from exc

    # --- issuing credentials (CLI, bootstrap, later the token API) ------------------------------

    def create_client(
        self,
        *,
        user_id: int,
        scopes: frozenset[str],
        client_id: str | None = None,
        secret: str | None = None,
        name: str = "",
    ) -> tuple[OAuthClient, str]:
        """Register an OAuth client; returns it and its secret (shown once, stored hashed)."""
        client_id = client_id or str(uuid.uuid4())
        secret = secret or new_secret()
        client = self._catalog.create_oauth_client(
            client_id=client_id,
            secret_hash=digest(secret),
            user_id=user_id,
            scopes=scopes,
            name=name or client_id,
        )
        return client, secret

    def create_developer_token(
        self, *, user_id: int, name: str, expires_at: datetime | None = None, token: str | None = None
    ) -> tuple[AccessToken, str]:
        """Issue a developer token (``DDCI...``); returns its record and its value (shown once)."""
        token = token or DEVELOPER_TOKEN_PREFIX + secrets.token_hex(24)
        record = self._catalog.create_access_token(
            token_hash=digest(token), user_id=user_id, name=name, expires_at=expires_at
        )
        return record, token

    # --- developer tokens through the API (``/api/data/v1/accesstokens``) ------------------------

    def issue_developer_token(
        self, *, actor: Actor, owner_id: int, name: str, expires_at: datetime | None
    ) -> tuple[AccessToken, str]:
        """A token for ``owner_id``: anyone for themselves, admins for anyone. Returns the record
        and the value, which is shown this once and stored only as a digest."""
        access = self._require_access()
        own = owner_id == actor.user.id
        access.require(actor, Action.MANAGE_OWN_TOKENS if own else Action.MANAGE_ANY_TOKENS)
        if not own:
            try:
                self._catalog.get_user(owner_id)
            except NotFound:
                raise BadRequest(f"user {owner_id} does not exist; ownerId must name a user") from None
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise BadRequest("expires must be in the future (epoch milliseconds)")
        record, token = self.create_developer_token(user_id=owner_id, name=name, expires_at=expires_at)
        self._record(actor, "token.create", record)
        return record, token

    def developer_tokens(self, *, actor: Actor) -> list[AccessToken]:
        """Every token for admins; the actor's own for everyone else. Never the values."""
        access = self._require_access()
        if access.decide(actor, Action.MANAGE_ANY_TOKENS).allowed:
            return self._catalog.list_access_tokens()
        access.require(actor, Action.MANAGE_OWN_TOKENS)
        return self._catalog.list_access_tokens(user_id=actor.user.id)

    def revoke_developer_token(self, *, actor: Actor, token_id: int) -> AccessToken:
        """Delete the token: the very next request that presents it is 401. Someone else's token is
        404 to a non-admin, so token ids do not leak."""
        access = self._require_access()
        access.require(actor, Action.MANAGE_OWN_TOKENS)  # a credential without the 'user' scope: 403
        record = self._catalog.get_access_token(token_id)
        if record.user_id != actor.user.id and not access.decide(actor, Action.MANAGE_ANY_TOKENS).allowed:
            raise NotFound(f"access token {token_id} does not exist")
        self._catalog.delete_access_token(token_id)
        self._record(actor, "token.revoke", record)
        return record

    def _require_access(self) -> AccessControl:
        if self._access is None:
            raise RuntimeError("this Authenticator was built without access control")
        return self._access

    def _record(self, actor: Actor, action: str, record: AccessToken) -> None:
        if self._audit is not None:
            self._audit.record(
                actor,
                action,
                object_type="ACCESS_TOKEN",
                object_id=record.id,
                object_name=record.name,
                detail=f"owner user {record.user_id}",
            )


def _expired(record: AccessToken) -> bool:
    return record.expires_at is not None and record.expires_at <= datetime.now(UTC)


def ensure_admin(catalog: Catalog, *, email: str = "admin@datagrove.local") -> tuple[User, bool]:
    """The bootstrap admin user, created if missing; returns (user, created)."""
    existing = catalog.find_user_by_email(email)
    if existing is not None:
        return existing, False
    return catalog.create_user(name="Administrator", email=email, role=Role.ADMIN), True
