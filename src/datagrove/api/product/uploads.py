"""``/api/data/v3/datasources/{id}/uploads``: the seed's one-row append and Domo's upload sessions.

``POST /{id}/uploads`` dispatches on its body:

* ``{"values": "a,b,c", "delimiter": ","}`` appends one row (the seed document's form).
* No body, ``null``, ``{}`` or ``{"action": "APPEND"|"REPLACE"|null, "appendId", "message", ...}``
  opens an upload session (product-api.md §3.6) and answers ``{dataSourceId, uploadId,
  requestedAsOf}``. A session is an execution of the dataset's stream (``services/uploads.py``):
  opening one aborts the stream's other active execution.

Then ``PUT /{id}/uploads/{uploadId}/parts/{n}`` takes CSV without a header, plain or gzip, through
the same part path as the stream routes, and ``PUT /{id}/uploads/{uploadId}/commit`` with
``{"action", "index"}`` commits it exactly once; ``.../abort`` abandons it. Partitions are not
supported: ``dataTag``, ``restateDataTag``, ``appendId`` and ``includeHistory`` are accepted and
ignored, so an APPEND with a ``dataTag`` appends. ``index`` changes nothing: committed data is
queryable at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api.bodies import json_object
from datagrove.api.params import PathId
from datagrove.api.product import epoch_ms
from datagrove.api.public_v1.streams import receive_part
from datagrove.api.responses import json_response
from datagrove.api.security import current_actor, presented_credential, source_address
from datagrove.domain import Actor, UpdateMethod
from datagrove.errors import BadCredential, BadRequest
from datagrove.services.auth import Credential
from datagrove.services.uploads import Upload

router = APIRouter(prefix="/api/data/v3/datasources")


def session_action(value: Any) -> UpdateMethod | None:
    """``action`` of an upload body: APPEND, REPLACE (any case) or null (decide later)."""
    if value is None:
        return None
    text = str(value).upper()
    if text in ("UPSERT", "REPAIR"):
        raise BadRequest(f"action {text} is not supported; use APPEND or REPLACE")
    try:
        return UpdateMethod(text)
    except ValueError:
        raise BadRequest(f"action must be APPEND, REPLACE or null, not {value!r}") from None


def index_flag(value: Any) -> bool:
    """``index`` as clients send it: a boolean, ``"true"``/``"false"``, or absent."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadRequest(f"index must be true or false, not {value!r}")


def is_one_row_append(body: dict[str, Any]) -> bool:
    """A body with the seed's keys is a one-row append (checked as one); any other opens a session."""
    return "values" in body or "delimiter" in body


async def append_row(
    dataset_id: str, body: dict[str, Any], request: Request, credential: Credential
) -> Response:
    """The seed document's one-row append: ``{"values", "delimiter"}``, answered ``{}`` once the row
    is durable (``services/appends.py``), without a thread of its own."""
    values = body.get("values")
    if not isinstance(values, str):
        raise BadRequest('values must be one row as text: send {"values": "v1,v2,v3", "delimiter": ","}')
    services = request.app.state.services
    address = source_address(request)
    services.credentials.refuse_when_blocked(credential, source_address=address)
    try:
        receipt = await asyncio.wrap_future(
            services.appends.submit(
                credential=credential,
                dataset_id=dataset_id,
                values=values,
                delimiter=body.get("delimiter"),
            )
        )
    except BadCredential:
        await run_in_threadpool(services.credentials.failed, credential, source_address=address)
        raise
    request.state.actor = receipt.actor
    return json_response({})


@router.post("/{dataset_id}/uploads")
@router.post("/{dataset_id}/uploads/", include_in_schema=False)
async def open_upload(dataset_id: str, request: Request) -> Response:
    # No ``current_actor`` dependency: a one-row append's credential is checked in the append
    # service's group commit, so the path built for thousands of requests a second never waits for
    # a thread (measured: a threadpool hop per request halves the rate). A session resolves it here.
    credential = presented_credential(request)
    body = await json_object(request, required=False)
    if is_one_row_append(body):
        return await append_row(dataset_id, body, request, credential)
    actor = await current_actor(request)
    upload: Upload = await run_in_threadpool(
        request.app.state.services.uploads.open,
        actor=actor,
        dataset_id=dataset_id,
        update_method=session_action(body.get("action")),
    )
    return json_response(
        {
            "dataSourceId": upload.dataset.id,
            "uploadId": upload.upload_id,
            "requestedAsOf": epoch_ms(upload.execution.created_at),
        }
    )


@router.put("/{dataset_id}/uploads/{upload_id}/parts/{part_id}")
async def upload_part(
    dataset_id: str,
    upload_id: PathId,
    part_id: PathId,
    request: Request,
    actor: Actor = Depends(current_actor),
) -> Response:
    found: Upload = await run_in_threadpool(
        request.app.state.services.uploads.locate, actor=actor, dataset_id=dataset_id, upload_id=upload_id
    )
    uploaded = await receive_part(request, actor, found.stream_id, upload_id, part_id)
    part = uploaded.part
    return json_response(
        {
            "uploadStatus": "SUCCESS",
            "uploadMessage": f"part {part.part}: {part.rows} rows, {part.bytes} bytes",
            "dataSourceId": found.dataset.id,
            "uploadId": upload_id,
            "partId": part.part,
            "rows": part.rows,
            "bytes": part.bytes,
            "checksum": part.checksum,
        }
    )


@router.put("/{dataset_id}/uploads/{upload_id}/commit")
async def commit(
    dataset_id: str, upload_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    body = await json_object(request, required=False)
    method = session_action(body.get("action"))
    index = index_flag(body.get("index"))
    committed = await run_in_threadpool(
        request.app.state.services.uploads.commit,
        actor=actor,
        dataset_id=dataset_id,
        upload_id=upload_id,
        update_method=method,
    )
    execution, dataset = committed.upload.execution, committed.upload.dataset
    return json_response(
        {
            "dataSourceId": dataset.id,
            "uploadId": execution.id,
            "dataTag": None,
            "status": execution.state.value,
            "size": {
                "rowCount": execution.rows,
                "columnCount": len(dataset.columns),
                "numberOfBytes": execution.bytes,
                "partCount": committed.part_count,
            },
            "indexing": {"requested": index},
            "updateMethod": execution.update_method.value,
        }
    )


@router.put("/{dataset_id}/uploads/{upload_id}/abort")
async def abort(
    dataset_id: str, upload_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    await json_object(request, required=False)
    aborted: Upload = await run_in_threadpool(
        request.app.state.services.uploads.abort, actor=actor, dataset_id=dataset_id, upload_id=upload_id
    )
    return json_response(
        {
            "dataSourceId": aborted.dataset.id,
            "uploadId": aborted.upload_id,
            "status": aborted.execution.state.value,
        }
    )
