"""Account reads of Domo's product API (product-api.md §2.1 ``Account``, §3.4.1 access lists).

* ``GET /api/data/v1/accounts`` (``limit`` default 50, ``offset``) and ``GET .../accounts/{id}``:
  the product ``Account`` shape, ids as integers, times in epoch milliseconds, ``configurations``
  with every credential value masked. ``modifiedBy`` is the owner (the catalog keeps no editor;
  the activity log does).
* ``GET /api/data/v2/accounts/share/{id}``: ``{"list": [{type, id, accessLevel, name}],
  "totalUserCount"}``, the owner first as ``OWNER``, principal ids as strings.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from datagrove.api.params import int_param
from datagrove.api.product import epoch_ms
from datagrove.api.public_v1.accounts import account_id
from datagrove.api.responses import json_response
from datagrove.api.security import current_actor
from datagrove.domain import Account, Actor, PrincipalType
from datagrove.services.accounts import MASK

router = APIRouter(prefix="/api/data")


def product_account(a: Account) -> dict[str, Any]:
    return {
        "id": a.id,
        "accountId": a.id,
        "name": a.name,
        "displayName": a.name,
        "userId": a.owner_id,
        "type": a.type,
        "dataProviderType": a.type,
        "valid": a.valid,
        "createdAt": epoch_ms(a.created_at),
        "createdBy": a.owner_id,
        "modifiedAt": epoch_ms(a.modified_at),
        "modifiedBy": a.owner_id,
        "credentialsType": "fields",
        "configurations": dict.fromkeys(a.credential_keys, MASK),
    }


@router.get("/v1/accounts")
def list_accounts(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    query = request.query_params
    accounts = request.app.state.services.accounts.list_accounts(
        actor=actor,
        limit=int_param(query, "limit", 50),
        offset=int_param(query, "offset", 0),
        sort=query.get("sort") or None,
    )
    return json_response([product_account(a) for a in accounts])


@router.get("/v1/accounts/{id}")
def get_account(id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    found = request.app.state.services.accounts.get(actor=actor, account_id=account_id(id))
    return json_response(product_account(found))


@router.get("/v2/accounts/share/{id}")
def account_access(id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    entries = request.app.state.services.accounts.access_list(actor=actor, account_id=account_id(id))
    return json_response(
        {
            "list": [
                {
                    "type": e.principal_type.value,
                    "id": str(e.principal_id),
                    "accessLevel": e.level.value,
                    "name": e.name,
                }
                for e in entries
            ],
            "totalUserCount": sum(e.principal_type is PrincipalType.USER for e in entries),
        }
    )
