"""Who is calling: ``Authorization: bearer|Bearer <jwt>`` or ``X-DOMO-Developer-Token: <token>``.

Every route except ``/oauth/token`` and ``/health`` depends on ``current_actor``. A missing,
expired or unknown credential is 401 (Node and Java SDKs refresh their token on 401 only); unknown
developer tokens are counted per source address, and an address at its limit is refused with 429
(``services/failed_attempts.py``).
"""

from __future__ import annotations

from fastapi import Request

from datagrove.domain import Actor
from datagrove.errors import Unauthorized
from datagrove.services.auth import Credential


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


def current_actor(request: Request) -> Actor:
    actor: Actor = request.app.state.services.credentials.actor_for(
        presented_credential(request), source_address=source_address(request)
    )
    request.state.actor = actor
    return actor


def source_address(request: Request) -> str:
    """The TCP peer's address (failed authentications are counted per address)."""
    return request.client.host if request.client else "unknown"
