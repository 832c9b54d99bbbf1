"""Who is calling the catalog: ``Authorization: Bearer <token>``, where the token is an access token
from either token endpoint or a developer token.

The protocol's clients have one way to present a credential they were given (Spark's and Trino's
``token``, PyIceberg's ``token``): as a bearer token. A developer token (no JWT: it has no dots) is
taken as such, so a person can point an engine at the catalog with the token they already have.
"""

from __future__ import annotations

from fastapi import Request

from datagrove.api.security import presented_credential, source_address
from datagrove.domain import Actor
from datagrove.services.auth import Credential


def catalog_actor(request: Request) -> Actor:
    credential = presented_credential(request)
    if credential.kind == "bearer" and credential.value.count(".") != 2:
        credential = Credential("developer_token", credential.value)
    # Counted and limited like every other route's credentials (LimitedCredentials).
    actor: Actor = request.app.state.services.credentials.actor_for(
        credential, source_address=source_address(request)
    )
    request.state.actor = actor
    return actor
