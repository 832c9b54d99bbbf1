"""``/v1/datasets``: the DataSet API as pydomo, the Node SDK and the Java SDK use it."""

from __future__ import annotations

import functools
import itertools
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from datagrove.api import render
from datagrove.api.bodies import gzip_hinted, json_object, receive_upload
from datagrove.api.params import engine_param, int_param, version_param
from datagrove.api.responses import empty, json_response
from datagrove.api.security import current_actor
from datagrove.api.short_reads import short_read
from datagrove.api.streaming import stream_answer
from datagrove.domain import Actor, UpdateMethod
from datagrove.errors import BadRequest
from datagrove.services.access import Action
from datagrove.services.query import RowForm
from datagrove.services.work_slots import Work
from datagrove.tables.staging import StagedUpload

router = APIRouter(prefix="/v1/datasets")


def _text(body: dict[str, Any], key: str, default: str | None = None) -> str | None:
    value = body.get(key, default)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


@router.post("")
async def create_dataset(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    body = await json_object(request)
    columns = render.parse_columns(body.get("schema") or {"columns": []})
    name = _text(body, "name") or ""
    description = _text(body, "description") or ""
    dataset = await run_in_threadpool(
        request.app.state.services.datasets.create,
        actor=actor,
        name=name,
        description=description,
        columns=columns,
    )
    return json_response(render.dataset(dataset), status=201)


@router.get("")
def list_datasets(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    query = request.query_params
    datasets = request.app.state.services.datasets.list_datasets(
        actor=actor,
        limit=int_param(query, "limit", 50),
        offset=int_param(query, "offset", 0),
        name_like=query.get("nameLike") or None,
        sort=query.get("sort") or None,
    )
    return json_response([render.dataset(d) for d in datasets])


@router.get("/{dataset_id}")
async def get_dataset(dataset_id: str, request: Request) -> Response:
    # Polled far more than anything else is called: the caller is taken here rather than declared,
    # which spares FastAPI's dependency solving (see api/short_reads.py).
    actor = await current_actor(request)
    datasets = request.app.state.services.datasets
    dataset = await short_read(request, datasets.get, actor=actor, dataset_id=dataset_id)
    return json_response(render.dataset(dataset))


@router.put("/{dataset_id}")
async def update_dataset(
    dataset_id: str, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    body = await json_object(request)
    changes: dict[str, Any] = {}
    for key in ("name", "description"):
        if body.get(key) is not None:
            changes[key] = _text(body, key)
    if body.get("schema") is not None:
        changes["columns"] = render.parse_columns(body["schema"])
    owner = body.get("owner")
    if isinstance(owner, dict) and owner.get("id"):  # Java sends owner {"id": 0} meaning "unchanged"
        changes["owner_id"] = int_param({"owner.id": str(owner["id"])}, "owner.id", 0)
    if isinstance(body.get("pdpEnabled"), bool):
        changes["pdp_enabled"] = body["pdpEnabled"]
    dataset = await run_in_threadpool(
        request.app.state.services.datasets.update, actor=actor, dataset_id=dataset_id, changes=changes
    )
    return json_response(render.dataset(dataset))


@router.delete("/{dataset_id}")
def delete_dataset(dataset_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    request.app.state.services.datasets.delete(actor=actor, dataset_id=dataset_id)
    return empty(204)


@router.put("/{dataset_id}/data")
async def import_data(dataset_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    # Domo: "Defaults to REPLACE if not specified ... Falls back to REPLACE if given an invalid value."
    method = (
        UpdateMethod.APPEND if request.query_params.get("updateMethod") == "APPEND" else UpdateMethod.REPLACE
    )
    datasets = request.app.state.services.datasets
    await run_in_threadpool(datasets.get, actor=actor, dataset_id=dataset_id, action=Action.EDIT)
    with (
        request.app.state.services.work_slots.holding(Work.UPLOAD, actor.user.id),  # 429 when none is free
        datasets.staging_area() as area,
    ):
        upload = StagedUpload(
            area / "body.csv",
            gzip_hint=gzip_hinted(request),
            max_bytes=request.app.state.settings.max_upload_bytes,
        )
        await receive_upload(request, upload)
        await run_in_threadpool(
            datasets.import_csv, actor=actor, dataset_id=dataset_id, csv_path=upload.path, method=method
        )
    return empty(204)


@router.get("/{dataset_id}/data")
async def export_data(dataset_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    include_header = request.query_params.get("includeHeader", "false").lower() == "true"
    chunks = await run_in_threadpool(
        request.app.state.services.datasets.export_csv,
        actor=actor,
        dataset_id=dataset_id,
        include_header=include_header,
        version=version_param(request.query_params),
    )
    # Produce the first chunk before answering: an error there is still a clean JSON error, whereas
    # one after the headers are sent can only cut the response short.
    first = await run_in_threadpool(next, chunks, b"")
    headers = {}
    file_name = request.query_params.get("fileName")
    if file_name:
        safe = "".join(ch for ch in file_name if ch.isalnum() or ch in "._- ") or "export.csv"
        headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    return StreamingResponse(
        itertools.chain([first], chunks), media_type="text/csv;charset=UTF-8", headers=headers
    )


@router.post("/query/execute/{dataset_id}")
async def query_dataset(dataset_id: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    body = await json_object(request)
    sql = body.get("sql")
    if isinstance(sql, dict):  # pydomo's docstring suggests {"sql": {"sql": ...}}; tolerate it
        sql = sql.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise BadRequest("the body needs a non-empty string 'sql'")
    answer = await run_in_threadpool(
        request.app.state.services.query.execute,
        actor=actor,
        dataset_id=dataset_id,
        sql=sql,
        form=RowForm.ARRAYS,
        version=version_param(request.query_params, body),
        engine=engine_param(request.query_params, body),
    )
    # Column-wise, as pydomo reads it (public-api-clients.md §5.10); rows sent as produced.
    return await stream_answer(
        answer,
        head=render.query_columns_head(answer),
        tail=functools.partial(render.query_columns_tail, answer),
        buffer_bytes=request.app.state.settings.query_buffer_bytes,
        send_timeout=request.app.state.settings.query_timeout_seconds,
        trace_id=getattr(request.state, "trace_id", ""),
    )
