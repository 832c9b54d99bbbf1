"""``/api/data/v1/accesstokens``: developer tokens (``DDCI...``) as Domo's admin API manages them.

* ``POST`` ``{"name", "ownerId", "expires"}`` (``expires`` in epoch milliseconds, absent or null for
  a token that does not expire; ``ownerId`` absent means the caller) answers the record with
  ``"token"``, the value, which is shown this once: only its digest is stored.
* ``GET`` lists records without values: every token for admins, one's own for everyone else.
* ``DELETE /{id}`` revokes at once: the very next request presenting the token is 401.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api.bodies import json_object
from datagrove.api.params import is_digits
from datagrove.api.product import epoch_ms
from datagrove.api.responses import json_response
from datagrove.api.security import current_actor
from datagrove.domain import AccessToken, Actor
from datagrove.errors import BadRequest, NotFound

router = APIRouter(prefix="/api/data/v1/accesstokens")


def token_record(record: AccessToken) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "ownerId": record.user_id,
        "expires": epoch_ms(record.expires_at),
        "created": epoch_ms(record.created_at),
    }


def _integer(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and is_digits(value.strip().lstrip("-")):
        return int(value)
    raise BadRequest(f"{key} must be an integer, not {value!r}")


@router.post("")
async def create_token(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    body = await json_object(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name must be a non-empty string")
    owner_id = _integer(body, "ownerId")
    if owner_id is not None and not 0 < owner_id < 2**63:
        raise BadRequest(f"user {owner_id} does not exist; ownerId must name a user")
    expires = _integer(body, "expires")
    try:
        expires_at = None if expires is None else datetime.fromtimestamp(expires / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise BadRequest(f"expires is not a time in epoch milliseconds: {expires}") from None
    record, token = await run_in_threadpool(
        request.app.state.services.auth.issue_developer_token,
        actor=actor,
        owner_id=actor.user.id if owner_id is None else owner_id,
        name=name.strip(),
        expires_at=expires_at,
    )
    return json_response({**token_record(record), "token": token})


@router.get("")
def list_tokens(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    records = request.app.state.services.auth.developer_tokens(actor=actor)
    return json_response([token_record(r) for r in records])


@router.delete("/{token_id}")
def revoke_token(token_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    if not is_digits(token_id) or len(token_id) > 18:
        raise NotFound(f"access token {token_id} does not exist")
    request.app.state.services.auth.revoke_developer_token(actor=actor, token_id=int(token_id))
    return json_response({})
