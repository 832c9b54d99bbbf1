"""``/v1/datasets/{id}/policies``: PDP policies as pydomo and the Java and Node SDKs use them.

A policy on the wire: ``{"id", "type", "name", "filters": [{"column", "values", "operator", "not"}],
"users", "virtualUsers", "groups"}``. Bodies are lenient the way the SDKs need: Java sends
``"id": 0`` (ignored), pydomo's examples leave out ``type``, ``groups`` and ``not``, and PUT takes a
partial policy (``{"name": "p2"}``). Numbers and booleans in ``values`` are taken as their text.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api.bodies import json_object
from datagrove.api.params import int_param, is_digits
from datagrove.api.responses import empty, json_response
from datagrove.api.security import current_actor
from datagrove.domain import Actor, Policy, PolicyFilter, PolicyOperator, PolicyType
from datagrove.errors import BadRequest, NotFound
from datagrove.services.policies import PolicyDraft

router = APIRouter(prefix="/v1/datasets")

MAX_ID = 2**63 - 1  # Java reads ids as long


def render_policy(policy: Policy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "type": policy.type.value,
        "name": policy.name,
        "filters": [
            {"column": f.column, "values": list(f.values), "operator": f.operator.value, "not": f.negate}
            for f in policy.filters
        ],
        "users": list(policy.users),
        "virtualUsers": list(policy.virtual_users),
        "groups": list(policy.groups),
    }


def parse_draft(body: dict[str, Any]) -> PolicyDraft:
    """The fields a body gives (absent or null: not given); BadRequest for a field of the wrong shape."""
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise BadRequest("name must be a string")
    return PolicyDraft(
        name=name,
        type=None if body.get("type") is None else _policy_type(body["type"]),
        filters=None if body.get("filters") is None else _filters(body["filters"]),
        users=None if body.get("users") is None else _ids(body["users"], "users"),
        groups=None if body.get("groups") is None else _ids(body["groups"], "groups"),
        virtual_users=None if body.get("virtualUsers") is None else _virtual_users(body["virtualUsers"]),
    )


def _policy_type(value: Any) -> PolicyType:
    try:
        return PolicyType(str(value).lower())
    except ValueError:
        raise BadRequest(f"type must be user, system or open, not {value!r}") from None


def _filters(value: Any) -> tuple[PolicyFilter, ...]:
    if not isinstance(value, list):
        raise BadRequest("filters must be a list of {column, values, operator, not} objects")
    return tuple(_filter(item, index + 1) for index, item in enumerate(value))


def _filter(item: Any, number: int) -> PolicyFilter:
    where = f"filter {number}"
    if not isinstance(item, dict):
        raise BadRequest(f"{where} must be an object with column, values, operator and not")
    column = item.get("column")
    if not isinstance(column, str):
        raise BadRequest(f"{where} needs a string 'column'")
    operator = item.get("operator")
    try:
        parsed = PolicyOperator(str(operator).upper())
    except ValueError:
        known = ", ".join(o.value for o in PolicyOperator)
        raise BadRequest(f"{where}: unknown operator {operator!r}; expected one of {known}") from None
    values = item.get("values")
    if values is None:
        values = []
    if not isinstance(values, list):
        raise BadRequest(f"{where}: values must be a list of strings")
    negate = item.get("not")
    if negate is not None and not isinstance(negate, bool):
        raise BadRequest(f"{where}: not must be true or false")
    return PolicyFilter(
        column=column,
        operator=parsed,
        values=tuple(_value_text(v, where) for v in values),
        negate=bool(negate),
    )


def _value_text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise BadRequest(f"{where}: every value must be a string (or a number), not {value!r}")


def _ids(value: Any, key: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise BadRequest(f"{key} must be a list of numeric ids")
    ids = []
    for item in value:
        if isinstance(item, str) and is_digits(item.strip()):
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item <= MAX_ID:
            raise BadRequest(f"{key} must be a list of numeric ids; {item!r} is not one")
        ids.append(item)
    return tuple(ids)


def _virtual_users(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise BadRequest("virtualUsers must be a list of strings")
    return tuple(str(v) for v in value)


def _policy_id(value: str) -> int:
    if not is_digits(value) or int(value) > MAX_ID:
        raise NotFound(f"policy {value} does not exist")
    return int(value)


def _routes(path: str, endpoint: Any, methods: list[str]) -> None:
    router.add_api_route(path, endpoint, methods=methods)
    router.add_api_route(path + "/", endpoint, methods=methods, include_in_schema=False)


async def create_policy(dataset_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    body = await json_object(request)
    policy = await run_in_threadpool(
        request.app.state.services.policies.create,
        actor=actor,
        dataset_id=dataset_id,
        draft=parse_draft(body),
    )
    return json_response(render_policy(policy), status=201)


def list_policies(dataset_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    query = request.query_params
    policies = request.app.state.services.policies.list_policies(
        actor=actor,
        dataset_id=dataset_id,
        limit=int_param(query, "limit", 0) if query.get("limit") else None,
        offset=int_param(query, "offset", 0),
    )
    return json_response([render_policy(p) for p in policies])


def get_policy(
    dataset_id: str, policy_id: str, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    policy = request.app.state.services.policies.get(
        actor=actor, dataset_id=dataset_id, policy_id=_policy_id(policy_id)
    )
    return json_response(render_policy(policy))


async def update_policy(
    dataset_id: str, policy_id: str, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    body = await json_object(request)
    policy = await run_in_threadpool(
        request.app.state.services.policies.update,
        actor=actor,
        dataset_id=dataset_id,
        policy_id=_policy_id(policy_id),
        draft=parse_draft(body),
    )
    return json_response(render_policy(policy))


def delete_policy(
    dataset_id: str, policy_id: str, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    request.app.state.services.policies.delete(
        actor=actor, dataset_id=dataset_id, policy_id=_policy_id(policy_id)
    )
    return empty(204)


_routes("/{dataset_id}/policies", create_policy, ["POST"])
_routes("/{dataset_id}/policies", list_policies, ["GET"])
_routes("/{dataset_id}/policies/{policy_id}", get_policy, ["GET"])
_routes("/{dataset_id}/policies/{policy_id}", update_policy, ["PUT"])
_routes("/{dataset_id}/policies/{policy_id}", delete_policy, ["DELETE"])
