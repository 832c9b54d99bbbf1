"""``/oauth/token``: the client-credentials grant, as POST with a form body or GET with a query.

Both use HTTP Basic client id and secret. Java sends ``scope=user data`` with a literal space in a
form body; pydomo sends ``+``; Node sends ``%20`` in the query. All are decoded the same way.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api.responses import json_response
from datagrove.api.security import source_address
from datagrove.errors import BadRequest, Unauthorized
from datagrove.services.auth import parse_scopes

router = APIRouter()


def basic_credentials(request: Request) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        raise Unauthorized("client credentials required (HTTP Basic)")
    try:
        client_id, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthorized("malformed Basic credentials") from exc
    return client_id, secret


async def _token(request: Request) -> Response:
    params = {key: values[-1] for key, values in parse_qs(request.url.query, keep_blank_values=True).items()}
    if request.method == "POST":
        body = (await request.body()).decode("utf-8", "replace")
        # parse_qs turns '+' into a space and keeps a literal space: every client's form works.
        params.update({key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()})
    client_id, secret = basic_credentials(request)
    grant_type = params.get("grant_type", "client_credentials")
    if grant_type != "client_credentials":
        raise BadRequest(f"unsupported grant_type {grant_type!r}; only client_credentials is supported")
    services = request.app.state.services
    grant = await run_in_threadpool(
        services.credentials.grant,
        client_id=client_id,
        client_secret=secret,
        requested_scopes=parse_scopes(params.get("scope")),
        source_address=source_address(request),
    )
    return json_response(
        {
            "access_token": grant.access_token,
            "token_type": "bearer",
            "expires_in": grant.expires_in,
            "scope": " ".join(sorted(grant.scopes)),
            "customer": services.auth.customer,
            "env": "prod",
            "userId": grant.user.id,
            "role": grant.user.role.value,
            "jti": grant.jti,
        }
    )


router.add_api_route("/oauth/token", _token, methods=["GET", "POST"], include_in_schema=True)
