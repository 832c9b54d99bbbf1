"""``/v1/users``: the User API as pydomo, the Node SDK and the Java SDK use it (public-api-clients.md §7.1).

Paths are served with and without a trailing slash (pydomo uses ``/v1/users/``), never by a redirect.
Bodies are read leniently: unknown and read-only fields (Java round-trips whole users) are ignored,
and ``sendInvite`` is accepted and ignored (Datagrove sends no mail). Of Domo's profile fields only
name, email and role are kept; ``title``, ``phone`` and the like are accepted and not stored.

``password`` (Datagrove's own, write-only: never returned) gives the user a password for web
sign-in on create or update; ``"password": null`` on update removes it. Admins set anyone's; a
user may set its own with a body holding only ``password``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api.bodies import json_object
from datagrove.api.params import PathId, int_param
from datagrove.api.render import timestamp
from datagrove.api.responses import empty, json_response
from datagrove.api.security import current_actor
from datagrove.domain import Actor, Role
from datagrove.errors import BadRequest
from datagrove.services.passwords import acceptable
from datagrove.services.people import Person, parse_role

router = APIRouter(prefix="/v1/users")

# Domo's system role ids, reported as ``roleId`` and accepted in its place.
ROLE_IDS = {Role.ADMIN: 1, Role.PRIVILEGED: 2, Role.EDITOR: 3, Role.PARTICIPANT: 4}


def user(person: Person) -> dict[str, Any]:
    u = person.user
    return {
        "id": u.id,
        "name": u.name,
        "email": u.email,
        "role": u.role.value,
        "roleId": ROLE_IDS[u.role],
        "createdAt": timestamp(u.created_at),
        "updatedAt": timestamp(u.updated_at),
        "groups": [{"id": g.id, "name": g.name} for g in person.groups],
    }


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


def _role(body: dict[str, Any]) -> Role | None:
    if body.get("role") is not None:
        return parse_role(body["role"])
    role_id = body.get("roleId")
    if role_id is None:
        return None
    for role, known in ROLE_IDS.items():
        if str(role_id) == str(known):
            return role
    raise BadRequest(f"roleId must be one of {sorted(ROLE_IDS.values())}, not {role_id!r}")


def _password(body: dict[str, Any]) -> str | None:
    value = body.get("password")
    return None if value is None else acceptable(value)


def _routes(path: str, endpoint: Any, methods: list[str]) -> None:
    router.add_api_route(path, endpoint, methods=methods)
    router.add_api_route(path + "/", endpoint, methods=methods, include_in_schema=False)


async def create_user(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    body = await json_object(request)
    name, email = _text(body, "name"), _text(body, "email")
    if not name or not email:
        raise BadRequest("a user needs a name and an email")
    password, services = _password(body), request.app.state.services
    person = await run_in_threadpool(
        services.people.create_user, actor=actor, name=name, email=email, role=_role(body) or Role.PARTICIPANT
    )
    if password is not None:
        await run_in_threadpool(
            services.passwords.set_password, actor=actor, user_id=person.user.id, password=password
        )
    return json_response(user(person), status=201)


def list_users(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    query = request.query_params
    people = request.app.state.services.people.list_users(
        actor=actor, limit=int_param(query, "limit", 50), offset=int_param(query, "offset", 0)
    )
    return json_response([user(p) for p in people])


def get_user(user_id: PathId, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    return json_response(user(request.app.state.services.people.get_user(actor=actor, user_id=user_id)))


async def update_user(user_id: PathId, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    body = await json_object(request)
    services = request.app.state.services
    password = _password(body)
    if "password" in body and body.keys() <= {"password", "id"}:
        # Only the password: the user's own is theirs to change (people.update_user is for admins).
        await run_in_threadpool(
            services.passwords.set_password, actor=actor, user_id=user_id, password=password
        )
        return json_response(user(services.people.get_user(actor=actor, user_id=user_id)))
    person = await run_in_threadpool(
        services.people.update_user,
        actor=actor,
        user_id=user_id,
        name=_text(body, "name"),
        email=_text(body, "email"),
        role=_role(body),
    )
    if "password" in body:
        await run_in_threadpool(
            services.passwords.set_password, actor=actor, user_id=user_id, password=password
        )
    return json_response(user(person))


def delete_user(user_id: PathId, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    request.app.state.services.people.delete_user(actor=actor, user_id=user_id)
    return empty(204)


_routes("", create_user, ["POST"])
_routes("", list_users, ["GET"])
_routes("/{user_id}", get_user, ["GET"])
_routes("/{user_id}", update_user, ["PUT"])
_routes("/{user_id}", delete_user, ["DELETE"])
