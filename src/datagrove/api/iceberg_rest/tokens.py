"""``POST /iceberg/v1/oauth/tokens``: the protocol's OAuth2 client-credentials endpoint.

It takes the same client credentials as ``/oauth/token`` (a client id and secret made with
``datagrove client``), in the form body as the protocol's clients send them (PyIceberg's
``credential=id:secret``, Spark's and Trino's ``credential``) or as HTTP Basic, and issues the same
access tokens, with the same lifetime. The protocol's default scope ``catalog`` means ``data``
(reading datasets); Datagrove's own scope names are accepted as well.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api.iceberg_rest.errors import PREFIX, IcebergRoute
from datagrove.api.public_v1.oauth import basic_credentials
from datagrove.api.responses import json_response
from datagrove.api.security import source_address
from datagrove.errors import BadRequest
from datagrove.services.auth import parse_scopes

router = APIRouter(prefix=PREFIX, route_class=IcebergRoute)

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 (RFC 8693 name, no secret)


@router.post("/v1/oauth/tokens")
async def issue_token(request: Request) -> Response:
    body = (await request.body()).decode("utf-8", "replace")
    form = {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}
    grant_type = form.get("grant_type", "")
    if grant_type != "client_credentials":
        raise BadRequest(f"unsupported grant_type {grant_type!r}; only client_credentials is supported")
    if "client_id" in form:
        client_id, secret = form["client_id"], form.get("client_secret", "")
    else:
        client_id, secret = basic_credentials(request)
    scope = " ".join("data" if s == "catalog" else s for s in form.get("scope", "").split())
    # The same failed-attempt limits as /oauth/token: a second door must not skip the lock.
    grant = await run_in_threadpool(
        request.app.state.services.credentials.grant,
        client_id=client_id,
        client_secret=secret,
        requested_scopes=parse_scopes(scope),
        source_address=source_address(request),
    )
    return json_response(
        {
            "access_token": grant.access_token,
            "token_type": "bearer",
            "expires_in": grant.expires_in,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "scope": " ".join(sorted(grant.scopes)),
        }
    )
