"""Who is calling: ``Authorization: bearer|Bearer <jwt>`` or ``X-DOMO-Developer-Token: <token>``.

Every route except ``/oauth/token`` and ``/health`` depends on ``current_actor``. A missing,
expired or unknown credential is 401 (Node and Java SDKs refresh their token on 401 only); unknown
developer tokens are counted per source address, and an address at its limit is refused with 429
(``services/failed_attempts.py``).
"""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from datagrove.domain import Actor
from datagrove.errors import Unauthorized
from datagrove.services.auth import Credential

READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


def presented_credential(request: Request) -> Credential:
    """The credential in the request's headers, unchecked; 401 when there is none."""
    developer_token = request.headers.get("x-domo-developer-token")
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return Credential("bearer", value.strip())
    if developer_token:
        return Credential("developer_token", developer_token.strip())
    raise Unauthorized(
        "authentication required: send 'Authorization: bearer <token>' or X-DOMO-Developer-Token"
    )


async def current_actor(request: Request) -> Actor:
    """The caller. Async, so that no thread is taken for it: with the catalog pinned for the
    request, a known credential is answered from memory (``Authenticator.begin_request``) — on the
    event loop where the catalog allows; a refused one goes to the thread pool, where the failed
    attempt is counted and recorded (``LimitedCredentials``)."""
    services = request.app.state.services
    credential = presented_credential(request)
    address = source_address(request)
    services.auth.begin_request(read_only=request.method in READ_ONLY_METHODS)
    known: Actor | None = None
    if services.auth.reads_on_event_loop:
        # A dictionary lookup: an address over its limit is refused even with a right token.
        services.credentials.refuse_when_blocked(credential, source_address=address)
        known = services.auth.known_actor(credential)
    actor: Actor = (
        known
        if known is not None
        else await run_in_threadpool(services.credentials.actor_for, credential, source_address=address)
    )
    request.state.actor = actor
    return actor


def source_address(request: Request) -> str:
    """The TCP peer's address (failed authentications are counted per address)."""
    return request.client.host if request.client else "unknown"
