"""Who is calling: ``Authorization: bearer|Bearer <jwt>`` or ``X-DOMO-Developer-Token: <token>``.

Every route except ``/oauth/token`` and ``/health`` depends on ``current_actor``. A missing,
expired or unknown credential is 401 (Node and Java SDKs refresh their token on 401 only).
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
    event loop where the catalog allows; a refused one goes to the thread pool (it is recorded)."""
    auth = request.app.state.services.auth
    credential = presented_credential(request)
    auth.begin_request(read_only=request.method in READ_ONLY_METHODS)
    known: Actor | None = auth.known_actor(credential) if auth.reads_on_event_loop else None
    actor: Actor = known if known is not None else await run_in_threadpool(auth.actor_for, credential)
    request.state.actor = actor
    return actor
