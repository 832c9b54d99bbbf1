"""``/v1/groups``: the Group API as pydomo, the Node SDK and the Java SDK use it (public-api-clients.md §7.2).

Paths are served with and without a trailing slash (pydomo uses ``/v1/groups/``), never by a redirect.
``active`` and ``default`` arrive as booleans or as the strings ``"true"``/``"false"`` (pydomo's
``groups_create`` sends ``"active": "true"``). Java's ``isActive`` and ``memberCount`` are not Domo
fields and are ignored. Adding a member answers 204 with an empty body (Java reads it as a string);
listing members answers a JSON array of user ids, all of them (up to 500) when no limit is given.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api.bodies import json_object
from datagrove.api.params import PathId, int_param
from datagrove.api.responses import empty, json_response
from datagrove.api.security import current_actor
from datagrove.domain import Actor, Group
from datagrove.errors import BadRequest
from datagrove.services.people import MAX_PAGE

router = APIRouter(prefix="/v1/groups")


def group(g: Group) -> dict[str, Any]:
    return {
        "id": g.id,
        "name": g.name,
        "active": g.active,
        "default": g.default,
        "creatorId": g.creator_id,
        "memberCount": g.member_count,
    }


def _flag(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadRequest(f"{key} must be true or false, not {value!r}")


def _name(body: dict[str, Any]) -> str | None:
    value = body.get("name")
    if value is not None and not isinstance(value, str):
        raise BadRequest("name must be a string")
    return value


def _routes(path: str, endpoint: Any, methods: list[str]) -> None:
    router.add_api_route(path, endpoint, methods=methods)
    router.add_api_route(path + "/", endpoint, methods=methods, include_in_schema=False)


async def create_group(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    body = await json_object(request)
    name = _name(body)
    if not name:
        raise BadRequest("a group needs a name")
    active, default = _flag(body, "active"), _flag(body, "default")
    created = await run_in_threadpool(
        request.app.state.services.people.create_group,
        actor=actor,
        name=name,
        active=True if active is None else active,
        default=bool(default),
    )
    return json_response(group(created), status=201)


def list_groups(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    query = request.query_params
    groups = request.app.state.services.people.list_groups(
        actor=actor, limit=int_param(query, "limit", 50), offset=int_param(query, "offset", 0)
    )
    return json_response([group(g) for g in groups])


def get_group(group_id: PathId, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    return json_response(group(request.app.state.services.people.get_group(actor=actor, group_id=group_id)))


async def update_group(group_id: PathId, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    body = await json_object(request)
    updated = await run_in_threadpool(
        request.app.state.services.people.update_group,
        actor=actor,
        group_id=group_id,
        name=_name(body),
        active=_flag(body, "active"),
        default=_flag(body, "default"),
    )
    return json_response(group(updated))


def delete_group(group_id: PathId, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    request.app.state.services.people.delete_group(actor=actor, group_id=group_id)
    return empty(204)


def list_members(group_id: PathId, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    query = request.query_params
    ids = request.app.state.services.people.member_ids(
        actor=actor,
        group_id=group_id,
        limit=int_param(query, "limit", MAX_PAGE),
        offset=int_param(query, "offset", 0),
    )
    return json_response(ids)


async def add_member(
    group_id: PathId, user_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    await json_object(request, required=False)  # pydomo sends {}, Java "", Node nothing
    await run_in_threadpool(
        request.app.state.services.people.add_member, actor=actor, group_id=group_id, user_id=user_id
    )
    return empty(204)


def remove_member(
    group_id: PathId, user_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    request.app.state.services.people.remove_member(actor=actor, group_id=group_id, user_id=user_id)
    return empty(204)


_routes("", create_group, ["POST"])
_routes("", list_groups, ["GET"])
_routes("/{group_id}", get_group, ["GET"])
_routes("/{group_id}", update_group, ["PUT"])
_routes("/{group_id}", delete_group, ["DELETE"])
_routes("/{group_id}/users", list_members, ["GET"])
_routes("/{group_id}/users/{user_id}", add_member, ["PUT"])
_routes("/{group_id}/users/{user_id}", remove_member, ["DELETE"])
