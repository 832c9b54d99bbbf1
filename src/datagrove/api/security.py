"""Who is calling: ``Authorization: bearer|Bearer <jwt>`` or ``X-DOMO-Developer-Token: <token>``.

Every route except ``/oauth/token`` and ``/health`` depends on ``current_actor``. A missing,
expired or unknown credential is 401 (Node and Java SDKs refresh their token on 401 only).
"""

from __future__ import annotations

from fastapi import Request

from datagrove.domain import Actor
from datagrove.errors import Unauthorized


def current_actor(request: Request) -> Actor:
    services = request.app.state.services
    developer_token = request.headers.get("x-domo-developer-token")
    authorization = request.headers.get("authorization", "")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        actor = services.auth.actor_from_bearer(credential.strip())
    elif developer_token:
        actor = services.auth.actor_from_developer_token(developer_token.strip())
    else:
        raise Unauthorized(
            "authentication required: send 'Authorization: bearer <token>' or X-DOMO-Developer-Token"
        )
    request.state.actor = actor
    return actor
