"""``POST /api/query/v1/execute/{datasetId}``: SQL over one dataset.

The answer is what the seed document shows: a JSON array of row objects, keys in the query's
column order. ``?format=columns`` answers instead the column-wise object that Domo's own clients
read (``{datasource, columns, metadata, rows, numRows, numColumns, fromcache}``, product-api.md
§4.2); ``?format=rows`` is the default. ``offset``/``limit`` URL parameters, which some clients
send beside a paging clause in the SQL, are ignored: the SQL decides. Either way the rows are sent
as they are produced (see ``datagrove.api.streaming``). ``version`` (URL parameter or JSON body)
reads an earlier version of the dataset (``services/versions.py``).
"""

from __future__ import annotations

import functools

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api import render
from datagrove.api.bodies import json_object
from datagrove.api.params import engine_param, version_param
from datagrove.api.security import current_actor
from datagrove.api.streaming import stream_answer
from datagrove.domain import Actor
from datagrove.errors import BadRequest
from datagrove.services.query import RowForm

router = APIRouter(prefix="/api/query/v1")

FORMATS = {"rows": RowForm.OBJECTS, "columns": RowForm.ARRAYS}


@router.post("/execute/{dataset_id}")
async def execute(dataset_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    shape = request.query_params.get("format", "rows")
    if shape.lower() not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)} (default rows), not {shape!r}")
    body = await json_object(request)
    sql = body.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise BadRequest('the body needs a non-empty string \'sql\', e.g. {"sql": "SELECT * FROM table"}')
    form = FORMATS[shape.lower()]
    answer = await run_in_threadpool(
        request.app.state.services.query.execute,
        actor=actor,
        dataset_id=dataset_id,
        sql=sql,
        form=form,
        version=version_param(request.query_params, body),
        engine=engine_param(request.query_params, body),
    )
    if form is RowForm.OBJECTS:
        head, tail = b"[", render.query_rows_tail
    else:
        head = render.query_columns_head(answer)
        tail = functools.partial(render.query_columns_tail, answer, extra={"fromcache": False})
    return await stream_answer(
        answer,
        head=head,
        tail=tail,
        buffer_bytes=request.app.state.settings.query_buffer_bytes,
        send_timeout=request.app.state.settings.query_timeout_seconds,
        trace_id=getattr(request.state, "trace_id", ""),
    )
