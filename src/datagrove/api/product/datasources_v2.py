"""``POST /api/data/v2/datasources``: create a dataset the way Domo's product-API clients do.

Body (product-api.md §3.5): ``{"dataSourceName" (required), "dataSourceDescription" or
"description", "schema": {"columns": [{"name", "type"}]}, "userDefinedType", "dataProviderType"}``;
other keys are ignored. The dataset is made by the same service as ``POST /v1/datasets`` (so it
has its stream, its OWNER grant and its audit entry). The answer is **200**
``{"dataSource": {"dataSourceId", ...}}``: clients read ``response["dataSource"]["dataSourceId"]``.
Datagrove datasets are all API datasets: ``userDefinedType`` and ``dataProviderType`` are not
stored, and the answer says ``api`` as every other read does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api import render
from datagrove.api.bodies import json_object
from datagrove.api.product import epoch_ms
from datagrove.api.responses import json_response
from datagrove.api.security import current_actor
from datagrove.domain import Actor, Dataset
from datagrove.errors import BadRequest

router = APIRouter(prefix="/api/data/v2/datasources")


def data_source(d: Dataset) -> dict[str, Any]:
    """Domo's v2 DataSource (``DataSourceV2``): ids and names prefixed ``dataSource``, times in ms."""
    return {
        "dataSourceId": d.id,
        "dataSourceName": d.name,
        "dataSourceDescription": d.description,
        "dataSourceType": "API",
        "displayType": "api",
        "dataProviderType": "api",
        "userDefinedType": "api",
        "responsibleUserId": d.owner.id,
        "created": epoch_ms(d.created_at),
        "lastModified": epoch_ms(d.updated_at),
        "lastTouched": epoch_ms(d.updated_at),
        "lastUpdated": epoch_ms(d.data_updated_at or d.updated_at),
        "rowCount": d.row_count,
        "columnCount": len(d.columns),
        "cardCount": 0,
        "cloudId": "domo",
        "hidden": False,
        "tags": "[]",
        "properties": {"formulas": {"formulas": {}}},
    }


def text(body: dict[str, Any], *keys: str) -> str:
    """The first of ``keys`` present and not null, as a string (400 naming it otherwise)."""
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadRequest(f"{key} must be a string, not {value!r}")
        return value
    return ""


@router.post("")
async def create_datasource(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    body = await json_object(request)
    name = text(body, "dataSourceName")
    if not name.strip():
        raise BadRequest("dataSourceName is required (a non-empty string)")
    schema = body.get("schema")
    dataset = await run_in_threadpool(
        request.app.state.services.datasets.create,
        actor=actor,
        name=name,
        description=text(body, "dataSourceDescription", "description"),
        columns=render.parse_columns({"columns": []} if schema is None else schema),
    )
    return json_response({"dataSource": data_source(dataset)})
