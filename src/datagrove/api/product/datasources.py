"""``/api/data/v3/datasources``: dataset metadata, deletion and sharing.

* ``GET /{id}`` answers the seed document's keys (``id, name, type, status: "active"``,
  ``details {rows, columns}``, ``properties {rows, columns}``) together with the full DataSource
  real clients read (``rowCount``, ``columnCount``, ``owner``, ``state: "SUCCESS"``, ...; product-api.md
  §3.1). ``part`` (repeated or comma-separated), ``requestedParts`` and ``includeAllDetails=true``
  only add keys: ``permission`` adds ``accessLevel`` (the caller's), ``schema`` adds
  ``schema.columns``; other part names are ignored.
* ``DELETE /{id}`` (``deleteMethod`` HARD or SOFT, any case) deletes the dataset outright: there is
  no recycle bin, so a soft delete is a hard one.
* Sharing: ``GET /{id}/permissions``, ``GET /{id}/permissions/currentUser``,
  ``PUT /{id}/permissions`` (one principal's level, up or down; ``NONE`` removes it),
  ``DELETE /{id}/permissions/{USER|GROUP}/{id}`` and ``POST /{id}/share``. Access levels are
  Domo's (``CO_OWNER``, ``CAN_EDIT``, ``CAN_SHARE``, ``CAN_VIEW``); the seed's ``READ`` and
  ``WRITE`` are read as ``CAN_VIEW`` and ``CAN_EDIT``. Changes answer the grants afterwards.
* Uploads (``/{id}/uploads...``) live in ``uploads.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api.bodies import json_object
from datagrove.api.params import is_digits
from datagrove.api.product import epoch_ms
from datagrove.api.responses import json_response
from datagrove.api.security import current_actor
from datagrove.domain import AccessLevel, Actor, Dataset, PrincipalType
from datagrove.errors import BadRequest, NotFound
from datagrove.services.sharing import PrincipalGrant, ShareEntry

router = APIRouter(prefix="/api/data/v3/datasources")

# Parts of GET /{id} that add keys; the others (core, status, rowcolcount, ...) are always served.
PARTS = ("permission", "schema")

# The caller's rights as Domo spells them (product-api.md §6.2). In Datagrove CAN_SHARE includes
# CAN_EDIT, so it reads READ_WRITE_SHARE.
RIGHTS = {
    AccessLevel.OWNER: "READ_WRITE_DELETE_SHARE_ADMIN",
    AccessLevel.CO_OWNER: "READ_WRITE_DELETE_SHARE",
    AccessLevel.CAN_SHARE: "READ_WRITE_SHARE",
    AccessLevel.CAN_EDIT: "READ_WRITE",
    AccessLevel.CAN_VIEW: "READ",
}


def datasource(d: Dataset, level: AccessLevel, stream_id: int | None) -> dict[str, Any]:
    """The v3 DataSource: ``rowCount``/``columnCount`` always numbers, ``properties.formulas`` an
    object, ``tags`` a JSON-encoded string, ``owner.id`` a string, times in epoch milliseconds."""
    body: dict[str, Any] = {
        "id": d.id,
        "displayType": "api",
        "dataProviderType": "api",
        "type": "API",
        "name": d.name,
    }
    if d.description:  # Domo leaves an empty description out; clients use .get("description")
        body["description"] = d.description
    body.update(
        {
            "owner": {"id": str(d.owner.id), "name": d.owner.name, "type": "USER", "group": False},
            "status": "SUCCESS",
            "created": epoch_ms(d.created_at),
            "lastTouched": epoch_ms(d.updated_at),
            "lastUpdated": epoch_ms(d.data_updated_at or d.updated_at),
            "rowCount": d.row_count,
            "columnCount": len(d.columns),
            "cardInfo": {"cardCount": 0, "cardViewCount": 0},
            "properties": {"formulas": {"formulas": {}}},
            "state": "SUCCESS",
            "validConfiguration": True,
            "validAccount": True,
        }
    )
    if stream_id is not None:
        body["streamId"] = stream_id
    body.update(
        {
            "transportType": "API",
            "adc": False,
            "adcExternal": False,
            "cloudId": "domo",
            "cloudName": "Domo",
            "permissions": RIGHTS[level],
            "currentUserFullAccess": level.rank >= AccessLevel.CO_OWNER.rank,
            "hidden": False,
            "masked": False,
            "tags": "[]",
            "scheduleActive": True,
            "cardCount": 0,
            "cryoStatus": "ADRENALINE",
            "cloudEngine": "domo",
        }
    )
    return body


def stream_id_of(request: Request, actor: Actor, dataset_id: str) -> int | None:
    found = request.app.state.services.streams.list_streams(
        actor=actor, limit=1, offset=0, dataset_id=dataset_id
    )
    return found[0].stream.id if found else None


def permission_list(grants: list[PrincipalGrant]) -> dict[str, Any]:
    return {
        "list": [
            {
                "type": g.principal_type.value,
                "id": str(g.principal_id),
                "accessLevel": g.level.value,
                "name": g.name,
            }
            for g in grants
        ],
        "totalUserCount": sum(g.principal_type is PrincipalType.USER for g in grants),
        "totalGroupCount": sum(g.principal_type is PrincipalType.GROUP for g in grants),
    }


def principal_type(value: Any, where: str) -> PrincipalType:
    try:
        return PrincipalType(str(value).upper())
    except ValueError:
        raise BadRequest(f"{where} must be USER or GROUP, not {value!r}") from None


def principal_id(raw: Any, kind: PrincipalType, where: str) -> int:
    """A user or group id, as a number or a numeric string (clients send both)."""
    if isinstance(raw, bool) or not (
        isinstance(raw, int) or (isinstance(raw, str) and is_digits(raw.strip()))
    ):
        raise BadRequest(f"{where} must be a {kind.value.lower()} id, not {raw!r}")
    if not 0 < int(raw) < 2**63:
        raise BadRequest(f"{kind.value.lower()} {raw} does not exist")
    return int(raw)


def access_level(raw: Any, where: str) -> AccessLevel:
    try:
        return AccessLevel.parse(raw)
    except ValueError:
        levels = ", ".join(level.value for level in AccessLevel)
        raise BadRequest(f"{where} must be one of {levels} (or READ, WRITE), not {raw!r}") from None


def share_entries(body: dict[str, Any]) -> list[ShareEntry]:
    """``permissions: [{type, id, accessLevel}]``."""
    items = body.get("permissions")
    if not isinstance(items, list):
        raise BadRequest("permissions must be a list of {type, id, accessLevel}")
    entries = []
    for index, item in enumerate(items):
        where = f"permissions[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object with type, id and accessLevel")
        kind = principal_type(item.get("type"), f"{where}.type")
        entries.append(
            ShareEntry(
                kind,
                principal_id(item.get("id"), kind, f"{where}.id"),
                access_level(item.get("accessLevel"), f"{where}.accessLevel"),
            )
        )
    return entries


def requested_parts(query: Any) -> set[str]:
    """Part names from ``part`` (repeated or comma-separated), ``requestedParts`` and
    ``includeAllDetails=true`` (every part), lower-cased."""
    if str(query.get("includeAllDetails", "")).lower() == "true":
        return set(PARTS)
    values: Iterable[str] = [v for key in ("part", "part[]", "requestedParts") for v in query.getlist(key)]
    return {name.strip().lower() for value in values for name in value.split(",") if name.strip()}


def document_datasource(
    d: Dataset, level: AccessLevel, stream_id: int | None, parts: set[str]
) -> dict[str, Any]:
    """The seed document's DataSource over the real one: ``status`` is the document's ``"active"``
    (the real state stays in ``state``); ``details`` and ``properties`` carry ``rows`` and
    ``columns``, the same numbers as ``rowCount`` and ``columnCount``. Parts only add keys."""
    body = datasource(d, level, stream_id)
    size = {"rows": body["rowCount"], "columns": body["columnCount"]}
    body["status"] = "active"
    body["details"] = dict(size)
    body["properties"] = {**size, **body["properties"]}
    if "permission" in parts:
        body["accessLevel"] = level.value
    if "schema" in parts:
        body["schema"] = {"columns": [{"name": c.name, "type": c.type.value} for c in d.columns]}
    return body


@router.get("/{dataset_id}")
def get_datasource(dataset_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    dataset, level = request.app.state.services.sharing.own_level(actor=actor, dataset_id=dataset_id)
    parts = requested_parts(request.query_params)
    return json_response(document_datasource(dataset, level, stream_id_of(request, actor, dataset.id), parts))


@router.delete("/{dataset_id}")
async def delete_datasource(
    dataset_id: str, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    method = request.query_params.get("deleteMethod") or "HARD"
    if method.upper() not in ("HARD", "SOFT"):
        raise BadRequest(f"deleteMethod must be HARD or SOFT, not {method!r}")
    await json_object(request, required=False)  # some clients send a body with DELETE
    await run_in_threadpool(request.app.state.services.datasets.delete, actor=actor, dataset_id=dataset_id)
    return json_response({})


@router.get("/{dataset_id}/permissions")
def list_permissions(dataset_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    grants = request.app.state.services.sharing.grants(actor=actor, dataset_id=dataset_id)
    return json_response(permission_list(grants))


@router.put("/{dataset_id}/permissions")
async def set_permission(
    dataset_id: str, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    """One ``{type, id, accessLevel}`` (not a list): that principal gets exactly that level."""
    body = await json_object(request)
    kind = principal_type(body.get("type"), "type")
    raw_level = body.get("accessLevel")
    # Only the word NONE removes a grant: a missing or null level is a mistake, not a revoke.
    removing = isinstance(raw_level, str) and raw_level.strip().upper() == "NONE"
    level = None if removing else access_level(raw_level, "accessLevel")
    grants = await run_in_threadpool(
        request.app.state.services.sharing.set_level,
        actor=actor,
        dataset_id=dataset_id,
        principal_type=kind,
        principal_id=principal_id(body.get("id"), kind, "id"),
        level=level,
    )
    return json_response(permission_list(grants))


@router.get("/{dataset_id}/permissions/currentUser")
def current_user_level(dataset_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    _, level = request.app.state.services.sharing.own_level(actor=actor, dataset_id=dataset_id)
    return json_response(level.value)


@router.delete("/{dataset_id}/permissions/{kind}/{principal_id}")
async def revoke(
    dataset_id: str, kind: str, principal_id: str, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    await json_object(request, required=False)  # some clients send a body with DELETE
    kind_ = principal_type(kind, "the principal type")
    if not is_digits(principal_id) or len(principal_id) > 18:
        raise NotFound(f"{kind_.value} {principal_id} has no grant on dataset {dataset_id}")
    await run_in_threadpool(
        request.app.state.services.sharing.revoke,
        actor=actor,
        dataset_id=dataset_id,
        principal_type=kind_,
        principal_id=int(principal_id),
    )
    return json_response({})


@router.post("/{dataset_id}/share")
async def share(dataset_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    entries = share_entries(await json_object(request))
    grants = await run_in_threadpool(
        request.app.state.services.sharing.share, actor=actor, dataset_id=dataset_id, entries=entries
    )
    return json_response(permission_list(grants))
