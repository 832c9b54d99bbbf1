"""The upload page, ``/ui/upload``: a CSV file into a new dataset, or appended to or replacing one the
user may edit, through the stream part machinery (the same validation, staging and exactly-once
commit as ``/v1/streams/{id}/executions/{id}/part/{n}``).

* ``GET  /ui/upload[?dataset=ID]`` the page (``static/upload.js`` drives it).
* ``POST /ui/upload/schema?complete=`` the file's first bytes -> the proposed schema
  (``services/csv_schema.py``).
* ``POST /ui/upload/start`` ``{dataset, method}`` or ``{name, columns, method}`` -> a new execution
  of the dataset's stream (``services/uploads.py``), with the URLs of its parts and commit.
* ``PUT  /ui/upload/streams/{s}/executions/{e}/parts/{n}`` CSV without a header.
* ``POST /ui/upload/streams/{s}/executions/{e}/commit`` ``{method}`` -> the dataset's new row count.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api.bodies import json_object
from datagrove.api.params import PathId
from datagrove.api.public_v1.streams import receive_part
from datagrove.api.render import parse_columns
from datagrove.domain import Actor, Dataset, UpdateMethod
from datagrove.errors import BadRequest, PayloadTooLarge
from datagrove.services.access import Action
from datagrove.services.csv_schema import MAX_SAMPLE_BYTES, infer_schema
from datagrove.services.uploads import Upload
from datagrove.services.web_sessions import WebSession
from datagrove.web.render import page
from datagrove.web.session import csrf_checked_session, current_web_session

router = APIRouter(prefix="/ui/upload", include_in_schema=False)

LISTED_DATASETS = 500
PART_BYTES = 8 * 1024 * 1024
METHODS = ("REPLACE", "APPEND")


def _writable(request: Request, actor: Actor) -> list[Dataset]:
    """The datasets the actor may upload into: EDIT on each, as ``access.py`` decides."""
    services = request.app.state.services
    found = services.datasets.list_datasets(actor=actor, limit=LISTED_DATASETS, offset=0, sort="name")
    return [dataset for dataset in found if services.access.decide(actor, Action.EDIT, dataset).allowed]


def _may_create(request: Request, actor: Actor) -> bool:
    return bool(request.app.state.services.access.decide(actor, Action.CREATE_DATASET).allowed)


@router.get("")
async def upload_page(request: Request, session: WebSession = Depends(current_web_session)) -> Response:
    writable = await run_in_threadpool(_writable, request, session.actor)
    part_bytes = request.query_params.get("part_bytes", "")
    return page(
        request,
        "upload.html",
        session=session,
        title="Upload",
        section="upload",
        writable=writable,
        may_create=_may_create(request, session.actor),
        chosen=request.query_params.get("dataset", ""),
        # A smaller part size shows the part machinery on a small file (the browser tests use it).
        part_bytes=int(part_bytes) if part_bytes.isdigit() and int(part_bytes) > 0 else PART_BYTES,
    )


@router.post("/schema")
async def propose_schema(request: Request, _: WebSession = Depends(csrf_checked_session)) -> dict[str, Any]:
    sample = bytearray()
    async for chunk in request.stream():
        sample.extend(chunk)
        if len(sample) > MAX_SAMPLE_BYTES:
            raise PayloadTooLarge(f"send at most the first {MAX_SAMPLE_BYTES} bytes of the file")
    complete = request.query_params.get("complete", "false").lower() == "true"
    schema = await run_in_threadpool(infer_schema, bytes(sample), complete=complete)
    return {
        "columns": [{"name": c.name, "type": c.type.value} for c in schema.columns],
        "preview": schema.preview,
        "headerBytes": schema.header_bytes,
    }


def _method(value: Any) -> UpdateMethod:
    if value not in METHODS:
        raise BadRequest(f"method must be REPLACE or APPEND, not {value!r}")
    return UpdateMethod(value)


def _opened(upload: Upload) -> dict[str, Any]:
    base = f"/ui/upload/streams/{upload.stream_id}/executions/{upload.execution.id}"
    return {
        "dataset": upload.dataset.id,
        "stream": upload.stream_id,
        "execution": upload.execution.id,
        "partsUrl": base,
        "commitUrl": f"{base}/commit",
    }


@router.post("/start")
async def start(request: Request, session: WebSession = Depends(csrf_checked_session)) -> dict[str, Any]:
    body = await json_object(request)
    method = _method(body.get("method"))
    uploads = request.app.state.services.uploads
    if body.get("dataset"):
        upload = await run_in_threadpool(
            uploads.open, actor=session.actor, dataset_id=str(body["dataset"]), update_method=method
        )
        return _opened(upload)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name the new dataset")
    columns = parse_columns({"columns": body.get("columns")})
    if not columns:
        raise BadRequest("the new dataset needs at least one column")
    upload = await run_in_threadpool(
        uploads.create_and_open,
        actor=session.actor,
        name=name.strip(),
        description="Uploaded from the web page",
        columns=columns,
        update_method=method,
    )
    return _opened(upload)


@router.put("/streams/{stream_id}/executions/{execution_id}/parts/{part_id}")
async def upload_part(
    stream_id: PathId,
    execution_id: PathId,
    part_id: PathId,
    request: Request,
    session: WebSession = Depends(csrf_checked_session),
) -> dict[str, Any]:
    uploaded = await receive_part(request, session.actor, stream_id, execution_id, part_id)
    return {"part": part_id, "rows": uploaded.part.rows}


@router.post("/streams/{stream_id}/executions/{execution_id}/commit")
async def commit(
    stream_id: PathId,
    execution_id: PathId,
    request: Request,
    session: WebSession = Depends(csrf_checked_session),
) -> dict[str, Any]:
    body = await json_object(request, required=False)
    method = _method(body.get("method"))
    services = request.app.state.services
    execution = await run_in_threadpool(
        services.streams.commit,
        actor=session.actor,
        stream_id=stream_id,
        execution_id=execution_id,
        update_method=method,
    )
    view = await run_in_threadpool(services.streams.get, actor=session.actor, stream_id=stream_id)
    dataset = view.dataset
    return {
        "dataset": dataset.id,
        "name": dataset.name,
        "rows": dataset.row_count,
        "executionRows": execution.rows,
        "url": f"/ui/datasets/{dataset.id}",
    }
