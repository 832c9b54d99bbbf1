"""``POST /api/query/v1/execute/{datasetId}``: SQL over one dataset, answered column-wise.

Every real client reads ``{datasource, columns, metadata, rows, numRows, numColumns}`` (product-api.md
§4.2), not the seed document's list of row objects. ``offset``/``limit`` URL parameters, which some
clients send beside a paging clause in the SQL, are ignored: the SQL decides.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api import render
from datagrove.api.bodies import json_object
from datagrove.api.responses import json_response
from datagrove.api.security import current_actor
from datagrove.domain import Actor
from datagrove.errors import BadRequest

router = APIRouter(prefix="/api/query/v1")


@router.post("/execute/{dataset_id}")
async def execute(dataset_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    sql = (await json_object(request)).get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise BadRequest('the body needs a non-empty string \'sql\', e.g. {"sql": "SELECT * FROM table"}')
    result = await run_in_threadpool(
        request.app.state.services.query.execute, actor=actor, dataset_id=dataset_id, sql=sql
    )
    return json_response({**render.query_result(result), "fromcache": False})
