"""``/v1/streams``: the Stream API (streams, executions, parts, commit, abort).

Paths are served with and without a trailing slash (pydomo uses ``/v1/streams/``), never by a
redirect. Action bodies are parsed leniently: no body, ``null``, ``""`` and ``{}`` all mean
"nothing to say". Static segments (``search``, ``abort``) are routed before ``{id}`` segments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api import render
from datagrove.api.bodies import gzip_hinted, json_object, receive_upload
from datagrove.api.params import PathId, int_param
from datagrove.api.responses import empty, json_response
from datagrove.api.security import current_actor
from datagrove.api.short_reads import short_read
from datagrove.domain import Actor, UpdateMethod
from datagrove.errors import BadRequest
from datagrove.services.streams import Tombstone, UploadedPart
from datagrove.services.work_slots import Work
from datagrove.tables.staging import StagedUpload

router = APIRouter(prefix="/v1/streams")
SHORT_PAGE = 25  # streams a page may hold and still be read on the event loop (api/short_reads.py)
T = TypeVar("T")


def update_method(value: Any, *, required: bool = False) -> UpdateMethod | None:
    if value is None and not required:
        return None
    if value == "UPSERT":
        raise BadRequest("updateMethod UPSERT is not supported; use APPEND or REPLACE")
    try:
        return UpdateMethod(str(value).upper())
    except ValueError:
        raise BadRequest(f"updateMethod must be APPEND or REPLACE, not {value!r}") from None


def _routes(path: str, endpoint: Any, methods: list[str], **kwargs: Any) -> None:
    router.add_api_route(path, endpoint, methods=methods, **kwargs)
    router.add_api_route(path + "/", endpoint, methods=methods, include_in_schema=False, **kwargs)


async def create_stream(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    """201 with the stream and ``Location``: its absolute URL (the Stream API document's sample)."""
    body = await json_object(request)
    dataset = body.get("dataSet") or {}
    if not isinstance(dataset, dict):
        raise BadRequest("dataSet must be an object with name, description and schema")
    view = await run_in_threadpool(
        request.app.state.services.streams.create,
        actor=actor,
        name=str(dataset.get("name") or ""),
        description=str(dataset.get("description") or ""),
        columns=render.parse_columns(dataset.get("schema") or {"columns": []}),
        update_method=update_method(body.get("updateMethod")) or UpdateMethod.APPEND,
    )
    location = f"{str(request.base_url).rstrip('/')}/v1/streams/{view.stream.id}"
    return json_response(render.stream(view), status=201, headers={"Location": location})


async def list_streams(request: Request) -> Response:
    # Polled often: the caller is taken here rather than declared, which spares FastAPI's
    # parameter solving (see api/short_reads.py).
    actor = await current_actor(request)
    query = request.query_params
    limit = int_param(query, "limit", 50)
    # A page is one read plus one per stream's dataset (mostly from memory); a long one, a thread.
    read = short_read if limit <= SHORT_PAGE else _in_thread
    views = await read(
        request,
        request.app.state.services.streams.list_streams,
        actor=actor,
        limit=limit,
        offset=int_param(query, "offset", 0),
        sort=query.get("sort") or None,
    )
    return json_response([render.stream(v) for v in views])


async def _in_thread(_request: Request, read: Callable[..., T], /, **kwargs: Any) -> T:
    return await run_in_threadpool(read, **kwargs)


def search_streams(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    query = request.query_params
    q = query.get("q")
    if not q:
        raise BadRequest("q is required, e.g. q=dataSource.id:<dataset id>")
    views = request.app.state.services.streams.search(
        actor=actor, query=q, limit=int_param(query, "limit", 50), offset=int_param(query, "offset", 0)
    )
    return json_response([render.stream(v) for v in views])


async def get_stream(stream_id: PathId, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    """The stream, or the document's subset with ``deleted: true`` when its dataset was deleted."""
    found = await short_read(
        request, request.app.state.services.streams.read, actor=actor, stream_id=stream_id
    )
    return json_response(render.tombstone(found) if isinstance(found, Tombstone) else render.stream(found))


async def update_stream(
    stream_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    body = await json_object(request, required=False)
    # Only updateMethod: Java sends its whole StreamRequest, dataSet included, which must not be applied.
    view = await run_in_threadpool(
        request.app.state.services.streams.update,
        actor=actor,
        stream_id=stream_id,
        update_method=update_method(body.get("updateMethod")),
    )
    return json_response(render.stream(view))


def delete_stream(stream_id: PathId, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    request.app.state.services.streams.delete(actor=actor, stream_id=stream_id)
    return empty(204)


async def create_execution(
    stream_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    body = await json_object(request, required=False)
    execution = await run_in_threadpool(
        request.app.state.services.streams.create_execution,
        actor=actor,
        stream_id=stream_id,
        update_method=update_method(body.get("updateMethod")),
    )
    # 200, as the Stream API document shows (pydomo, the Node and Java SDKs take 200 or 201).
    return json_response(render.execution(execution))


def list_executions(stream_id: PathId, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    query = request.query_params
    executions = request.app.state.services.streams.list_executions(
        actor=actor,
        stream_id=stream_id,
        limit=int_param(query, "limit", 50),
        offset=int_param(query, "offset", 0),
    )
    return json_response([render.execution(e) for e in executions])


async def abort_current(
    stream_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    await json_object(request, required=False)
    await run_in_threadpool(
        request.app.state.services.streams.abort_current, actor=actor, stream_id=stream_id
    )
    return empty(204)


async def get_execution(
    stream_id: PathId, execution_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    execution = await short_read(
        request,
        request.app.state.services.streams.get_execution,
        actor=actor,
        stream_id=stream_id,
        execution_id=execution_id,
    )
    return json_response(render.execution(execution))


async def upload_part(
    stream_id: PathId,
    execution_id: PathId,
    part_id: PathId,
    request: Request,
    actor: Actor = Depends(current_actor),
) -> Response:
    uploaded = await receive_part(request, actor, stream_id, execution_id, part_id)
    return json_response(render.execution(uploaded.execution, part=uploaded.part))


async def receive_part(
    request: Request, actor: Actor, stream_id: int, execution_id: int, part_id: int
) -> UploadedPart:
    """Stream the body of a part upload to staging and hand it to the stream service (both API
    families' part routes use this)."""
    services = request.app.state.services
    # Refuse early (before reading a large body) when the stream, the execution or access is wrong.
    await run_in_threadpool(
        services.streams.writable_execution, actor=actor, stream_id=stream_id, execution_id=execution_id
    )
    with (
        services.work_slots.holding(Work.UPLOAD, actor.user.id),  # 429 when none is free
        services.datasets.staging_area() as area,
    ):
        upload = StagedUpload(
            area / f"part-{part_id}.csv",
            gzip_hint=gzip_hinted(request),
            max_bytes=request.app.state.settings.max_upload_bytes,
        )
        await receive_upload(request, upload)
        uploaded: UploadedPart = await run_in_threadpool(
            services.streams.upload_part,
            actor=actor,
            stream_id=stream_id,
            execution_id=execution_id,
            part_number=part_id,
            csv_path=upload.path,
            received_bytes=upload.received_bytes,
            checksum=upload.checksum,
        )
    return uploaded


async def commit(
    stream_id: PathId, execution_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    await json_object(request, required=False)
    execution = await run_in_threadpool(
        request.app.state.services.streams.commit, actor=actor, stream_id=stream_id, execution_id=execution_id
    )
    return json_response(render.execution(execution))


async def abort(
    stream_id: PathId, execution_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    await json_object(request, required=False)
    execution = await run_in_threadpool(
        request.app.state.services.streams.abort, actor=actor, stream_id=stream_id, execution_id=execution_id
    )
    return json_response(render.execution(execution))


# Order matters: static segments before {id} segments.
_routes("", create_stream, ["POST"])
_routes("", list_streams, ["GET"])
_routes("/search", search_streams, ["GET"])
_routes("/{stream_id}", get_stream, ["GET"])
_routes("/{stream_id}", update_stream, ["PATCH"])
_routes("/{stream_id}", delete_stream, ["DELETE"])
_routes("/{stream_id}/executions", create_execution, ["POST"])
_routes("/{stream_id}/executions", list_executions, ["GET"])
_routes("/{stream_id}/executions/abort", abort_current, ["PUT"])
_routes("/{stream_id}/executions/{execution_id}", get_execution, ["GET"])
_routes("/{stream_id}/executions/{execution_id}/part/{part_id}", upload_part, ["PUT"])
_routes("/{stream_id}/executions/{execution_id}/commit", commit, ["PUT"])
_routes("/{stream_id}/executions/{execution_id}/abort", abort, ["PUT"])
