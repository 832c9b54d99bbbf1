"""``/v1/datasets/{id}/versions`` (beyond Domo): a dataset's versions, and restoring one.

``GET`` lists the versions newest first (``limit``, default 50, at most 500; ``offset``), each
``{version, createdAt, operation, rowsAdded, rowsRemoved, rows, current, madeBy}``; ``POST
.../versions/{version}/restore`` makes one current again and answers the dataset. The rules are in
``services/versions.py``; reading a version is the ``version`` parameter of query and export.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api import render
from datagrove.api.params import int_param
from datagrove.api.responses import json_response
from datagrove.api.security import current_actor
from datagrove.domain import Actor
from datagrove.tables.versions import TableVersion

router = APIRouter(prefix="/v1/datasets")


@router.get("/{dataset_id}/versions")
def list_versions(dataset_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    query = request.query_params
    versions = request.app.state.services.versions.list_versions(
        actor=actor,
        dataset_id=dataset_id,
        limit=int_param(query, "limit", 50),
        offset=int_param(query, "offset", 0),
    )
    return json_response([version(v) for v in versions])


@router.post("/{dataset_id}/versions/{version_id}/restore")
async def restore_version(
    dataset_id: str, version_id: str, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    dataset = await run_in_threadpool(
        request.app.state.services.versions.restore, actor=actor, dataset_id=dataset_id, version=version_id
    )
    return json_response(render.dataset(dataset))


def version(v: TableVersion) -> dict[str, Any]:
    made_by = None
    if v.made_by is not None:
        made_by = {"kind": v.made_by.kind, "id": v.made_by.id, "userId": v.made_by.user_id}
    return {
        "version": str(v.snapshot_id),
        # Milliseconds: two versions often fall within one second.
        "createdAt": v.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "operation": v.operation,
        "rowsAdded": v.rows_added,
        "rowsRemoved": v.rows_removed,
        "rows": v.rows,
        "current": v.current,
        "madeBy": made_by,
    }
