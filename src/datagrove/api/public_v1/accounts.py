"""``/v1/accounts``: the Account API as pydomo and the Java SDK use it (public-api-clients.md §7.4).

An account is ``{"id": "12", "name", "valid", "type": {"id", "properties"}}``: the id is a string,
``type.id`` is the account type, ``type.properties`` the credentials, every value shown as
``"********"``. Credentials are read from ``type.properties`` (pydomo, Java), or a top-level
``properties`` or ``credentials`` object. PATCH merges (202, pydomo takes only 202): a property
sent back as ``"********"`` keeps its stored value, ``null`` removes it. ``POST /{id}/shares``
takes Java's ``{"user": {"id": N}}`` or ``{"group": {"id": N}}`` with an optional ``accessLevel``
(``CAN_VIEW``, the default, or ``CAN_EDIT``) and answers the account. Paths are served with and
without a trailing slash.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api.bodies import json_object
from datagrove.api.params import MAX_ID, int_param, is_digits
from datagrove.api.responses import empty, json_response
from datagrove.api.security import current_actor
from datagrove.domain import AccessLevel, Account, Actor, PrincipalType
from datagrove.errors import BadRequest, NotFound
from datagrove.services.accounts import MASK, credential_values

router = APIRouter(prefix="/v1/accounts")


def account(a: Account) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "name": a.name,
        "valid": a.valid,
        "type": {"id": a.type, "properties": dict.fromkeys(a.credential_keys, MASK)},
    }


def account_id(value: str) -> int:
    """The id in a path (a string, as pydomo sends it); anything that cannot name an account is 404."""
    text = value.strip()
    if not is_digits(text) or int(text) > MAX_ID:
        raise NotFound(f"account {value} does not exist")
    return int(text)


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


def _valid(body: dict[str, Any]) -> bool | None:
    value = body.get("valid")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadRequest(f"valid must be true or false, not {value!r}")


def _type(body: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """``type.id`` (or ``type`` as a plain string) and ``type.properties``."""
    value = body.get("type")
    if value is None or isinstance(value, str):
        return value, None
    if not isinstance(value, dict):
        raise BadRequest("type must be an object {id, properties}")
    type_id = value.get("id")
    if type_id is not None and not isinstance(type_id, str):
        raise BadRequest("type.id must be a string")
    return type_id, value.get("properties")


def _credentials(body: dict[str, Any], properties: Any) -> dict[str, str | None] | None:
    """The credentials from ``type.properties``, ``properties`` and ``credentials`` (merged in
    that order); None when none of them is present."""
    found: dict[str, str | None] | None = None
    for where, value in (
        ("type.properties", properties),
        *((k, body.get(k)) for k in ("properties", "credentials")),
    ):
        if value is not None:
            found = {**(found or {}), **credential_values(value, where)}
    return found


def _routes(path: str, endpoint: Any, methods: list[str]) -> None:
    router.add_api_route(path, endpoint, methods=methods)
    router.add_api_route(path + "/", endpoint, methods=methods, include_in_schema=False)


async def create_account(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    body = await json_object(request)
    name = _text(body, "name")
    if not name or not name.strip():
        raise BadRequest("an account needs a name")
    type_id, properties = _type(body)
    if not type_id or not type_id.strip():
        raise BadRequest('an account needs a type: {"type": {"id": "...", "properties": {...}}}')
    valid = _valid(body)
    created = await run_in_threadpool(
        request.app.state.services.accounts.create,
        actor=actor,
        name=name,
        type=type_id,
        credentials=_credentials(body, properties) or {},
        valid=True if valid is None else valid,
    )
    return json_response(account(created), status=201)


def list_accounts(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    query = request.query_params
    accounts = request.app.state.services.accounts.list_accounts(
        actor=actor,
        limit=int_param(query, "limit", 50),
        offset=int_param(query, "offset", 0),
        sort=query.get("sort") or None,
    )
    return json_response([account(a) for a in accounts])


def get_account(id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    found = request.app.state.services.accounts.get(actor=actor, account_id=account_id(id))
    return json_response(account(found))


async def update_account(id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    body = await json_object(request)
    type_id, properties = _type(body)
    updated = await run_in_threadpool(
        request.app.state.services.accounts.update,
        actor=actor,
        account_id=account_id(id),
        name=_text(body, "name"),
        valid=_valid(body),
        type=type_id,
        credentials=_credentials(body, properties),
    )
    return json_response(account(updated), status=202)


def delete_account(id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    request.app.state.services.accounts.delete(actor=actor, account_id=account_id(id))
    return empty(204)


def _principal(body: dict[str, Any]) -> tuple[PrincipalType, int]:
    for key, kind in (("user", PrincipalType.USER), ("group", PrincipalType.GROUP)):
        value = body.get(key)
        if value is None:
            continue
        principal = value.get("id") if isinstance(value, dict) else None
        if isinstance(principal, str) and is_digits(principal.strip()):
            principal = int(principal)
        if not isinstance(principal, int) or isinstance(principal, bool) or not 0 <= principal <= MAX_ID:
            raise BadRequest(f"{key}.id must be an integer id")
        return kind, principal
    raise BadRequest('a share needs {"user": {"id": N}} or {"group": {"id": N}}')


async def share_account(id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    body = await json_object(request)
    kind, principal = _principal(body)
    level = body.get("accessLevel")
    try:
        parsed = AccessLevel.CAN_VIEW if level is None else AccessLevel.parse(level)
    except ValueError:
        raise BadRequest(f"accessLevel must be CAN_VIEW or CAN_EDIT, not {level!r}") from None
    services = request.app.state.services
    number = account_id(id)
    await run_in_threadpool(
        services.accounts.share,
        actor=actor,
        account_id=number,
        principal_type=kind,
        principal_id=principal,
        level=parsed,
    )
    return json_response(account(services.accounts.get(actor=actor, account_id=number)))


_routes("", create_account, ["POST"])
_routes("", list_accounts, ["GET"])
_routes("/{id}", get_account, ["GET"])
_routes("/{id}", update_account, ["PATCH"])
_routes("/{id}", delete_account, ["DELETE"])
_routes("/{id}/shares", share_account, ["POST"])
