"""``/api/data/v1/streams``: streams and their executions as Domo's product API shows them.

Decisions (the seed document first, product-api.md §2 beside it):

* ``GET /{id}`` without ``fields`` answers the seed's default keys ``id, userId, name, displayName,
  type, dataProviderType, valid`` plus ``status`` (its "Stream (Connector) - Get" section).
  ``fields=all`` (or a list naming ``all``) answers the full Stream object with those keys beside
  it; an explicit list keeps only the keys it names; a name that is no key is 400 listing the known
  ones. ``GET /`` lists streams (``limit`` 50 by default, at most 500; ``[]`` past the end) with the
  same ``fields`` rules. Datagrove streams are API (push) streams: ``transport``, ``dataProvider``
  and ``configuration`` are fixed API values, so a client reading them never meets a missing key.
* A stream whose dataset was deleted answers the default keys that still hold, ``valid: false``,
  ``status: "deleted"`` and ``deleted: true`` (``all`` adds the dataset's id, name and description).
* ``POST /`` creates a dataset named ``dataSource.name`` and its stream and answers 201 with the
  seed's ``{"id", "status": "created"}`` beside the full Stream. Its schema is
  ``schemaDefinition.columns`` when sent (Domo's R package sends one), else empty (a connector's
  first run gives it the source's). A body with a ``dataProvider.key`` and a transport other than
  ``API`` creates a connector stream (``connector_streams.py``): its ``configuration``,
  ``account`` and ``advancedScheduleJson`` are checked and stored, secrets sealed and shown masked.
* ``PUT /{id}`` merges a partial Stream: ``updateMethod`` (unless ``changeUpdateMethod=false``),
  ``schemaDefinition.columns`` (a schema change that keeps the rows), ``dataSource.name`` /
  ``.description`` and a connector's ``configuration`` (by item name; a masked value keeps the
  secret), ``account``, ``advancedScheduleJson`` and ``dataProvider``; every other key is ignored,
  since clients PUT back the whole object they read.
  It answers 200 with the full Stream.
* ``POST /{id}/executions`` takes no body, ``{"runType": ...}``, the seed's ``{"action": ...}``
  or ``{"updateMethod": ...}`` and answers 200 (the seed's success code) with the execution and
  ``status: "started"``. On a connector stream it queues a run (``services/connector_runs.py``;
  409 while one is in progress unless ``abortRunning=true``), which ends SUCCESS or ERROR with
  ``errors[{category, code, message}]``. On a push stream it opens an ACTIVE execution that the
  push flow fills: ``PUT .../executions/{e}/part/{n}`` (CSV, no header, gzip welcome) and
  ``PUT .../executions/{e}/commit``. ``PUT .../executions/{e}/abort`` aborts either.
* ``GET /{id}/history/aggregate`` lists executions newest first (``limit``, default 1000), with the
  seed's ``status`` (completed, failed, running, aborted), ``duration`` and ``error``.
* Stream and execution times are epoch seconds; the embedded dataSource's are epoch milliseconds.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api import render
from datagrove.api.bodies import json_object
from datagrove.api.params import PathId, int_param
from datagrove.api.product import epoch_seconds, known_id
from datagrove.api.product.connector_streams import connector_fields, connector_spec
from datagrove.api.product.datasources import datasource
from datagrove.api.public_v1.streams import receive_part, update_method
from datagrove.api.responses import json_response
from datagrove.api.security import current_actor
from datagrove.domain import AccessLevel, Actor, Execution, ExecutionState, UpdateMethod
from datagrove.errors import BadRequest
from datagrove.services.streams import StreamView, Tombstone
from datagrove.tables.types import Column

router = APIRouter(prefix="/api/data/v1/streams")

HISTORY_PAGE = 500
#: The seed document's default ``fields``, and ``status`` from its "Stream (Connector) - Get" section.
DEFAULT_FIELDS = ("id", "userId", "name", "displayName", "type", "dataProviderType", "valid", "status")
#: Every key a Stream can have (the full object's, and a tombstone's ``deleted``): what ``fields`` may name.
KNOWN_FIELDS = (
    *DEFAULT_FIELDS,
    "invalidExecutionId",
    "transport",
    "updateMethod",
    "dataProvider",
    "account",
    "accounts",
    "dataSource",
    "schemaDefinition",
    "scheduleExpression",
    "scheduleStartDate",
    "advancedScheduleJson",
    "scheduleRetryExpression",
    "scheduleRetryCount",
    "lastExecution",
    "lastSuccessfulExecution",
    "currentExecution",
    "currentExecutionState",
    "createdAt",
    "createdBy",
    "modifiedAt",
    "modifiedBy",
    "scheduleState",
    "scheduleAssertion",
    "inactiveScheduleCode",
    "configuration",
    "deleted",
)
TRANSPORT_TYPE = "API"
DATA_PROVIDER_KEY = "api"
MANUAL_SCHEDULE = json.dumps({"type": "MANUAL", "timezone": "UTC"}, separators=(",", ":"))
# Domo's execution states have no ABORTED; an aborted execution reads as ERROR with its reason.
STATE = {
    ExecutionState.ACTIVE: "ACTIVE",
    ExecutionState.COMMITTING: "ACTIVE",
    ExecutionState.SUCCESS: "SUCCESS",
    ExecutionState.ERROR: "ERROR",
    ExecutionState.ABORTED: "ERROR",
}


def execution(e: Execution, *, started_by: int | None = None) -> dict[str, Any]:
    errors: list[dict[str, Any]] = []
    if e.error and e.state in (ExecutionState.ERROR, ExecutionState.ABORTED):
        errors.append(
            {
                "id": None,
                "streamId": e.stream_id,
                "executionId": e.id,
                "category": e.error_category or "FRAMEWORK",
                "code": e.error_code,
                "message": e.error,
                "invalidatesExecution": True,
                "parameters": {},
            }
        )
    return {
        "streamId": e.stream_id,
        "executionId": e.id,
        "toe": None,
        "startedAt": epoch_seconds(e.created_at),
        "endedAt": epoch_seconds(e.ended_at),
        "updateMethod": e.update_method.value,
        "index": True,
        "retryCount": e.retry_count,
        "retryExecution": None,
        "containerManagerId": None,
        "uploadId": None,
        "indexRequestKey": None,
        "currentState": STATE[e.state],
        "runType": e.run_type.value,
        "createdAt": epoch_seconds(e.created_at),
        "modifiedAt": epoch_seconds(e.modified_at),
        "latestPhase": None,
        "currentPhase": None,
        "removed": False,
        "rowsInserted": e.rows,
        "bytesInserted": e.bytes,
        "startedBy": None if (started_by or e.started_by) is None else str(started_by or e.started_by),
        "cancelledBy": None,
        "dataTag": None,
        "peakMemoryUsedBytes": None,
        "peakMemoryCommittedBytes": None,
        "exportable": False,
        "manualIndex": False,
        "errors": errors,
    }


# The seed document's execution statuses, beside Domo's real ``currentState``.
SEED_STATUS = {
    ExecutionState.ACTIVE: "running",
    ExecutionState.COMMITTING: "running",
    ExecutionState.SUCCESS: "completed",
    ExecutionState.ERROR: "failed",
    ExecutionState.ABORTED: "aborted",
}


def aggregate(e: Execution) -> dict[str, Any]:
    """One history entry: the seed document's ``executionId``, ``status`` and ``duration`` (seconds,
    once ended) or ``error``, beside the keys of Domo's captured example (product-api.md §2.5)."""
    entry: dict[str, Any] = {
        "streamId": e.stream_id,
        "executionId": e.id,
        "status": SEED_STATUS[e.state],
        "currentState": STATE[e.state],
        "rowsInserted": e.rows,
        "bytesInserted": e.bytes,
        "startedAt": epoch_seconds(e.created_at),
        "endedAt": epoch_seconds(e.ended_at),
        "updateMethod": e.update_method.value,
        "runType": e.run_type.value,
        "peakMemoryUsedBytes": None,
    }
    if e.ended_at is not None:
        entry["duration"] = round((e.ended_at - e.created_at).total_seconds(), 3)
    if e.error and e.state in (ExecutionState.ERROR, ExecutionState.ABORTED):
        entry["error"] = e.error
    return entry


def summary(view: StreamView, *, status: str = "active") -> dict[str, Any]:
    """The seed's default representation: ``userId`` the dataset's owner, both names the dataset's."""
    d, connector = view.dataset, view.stream.connector
    return {
        "id": view.stream.id,
        "userId": d.owner.id,
        "name": d.name,
        "displayName": d.name,
        "type": connector.transport.get("type", "CONNECTOR") if connector else TRANSPORT_TYPE,
        "dataProviderType": connector.provider_key if connector else DATA_PROVIDER_KEY,
        "valid": True,
        "status": status,
    }


def tombstone(t: Tombstone, *, full: bool) -> dict[str, Any]:
    """A stream whose dataset was deleted: the default keys that still hold, and ``deleted``."""
    body: dict[str, Any] = {
        "id": t.stream.id,
        "userId": t.dataset.owner_id,
        "name": t.dataset.name,
        "displayName": t.dataset.name,
        "type": TRANSPORT_TYPE,
        "dataProviderType": DATA_PROVIDER_KEY,
        "valid": False,
        "status": "deleted",
        "deleted": True,
    }
    if full:
        body.update(
            {
                "updateMethod": t.stream.update_method.value,
                "dataSource": {
                    "id": t.stream.dataset_id,
                    "name": t.dataset.name,
                    "description": t.dataset.description,
                },
                "createdAt": epoch_seconds(t.stream.created_at),
                "modifiedAt": epoch_seconds(t.stream.modified_at),
            }
        )
    return body


def stream(
    view: StreamView, level: AccessLevel, executions: list[Execution], connector: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The full Stream object; ``executions`` oldest first."""
    s, d = view.stream, view.dataset
    last = executions[-1] if executions else None
    succeeded = [e for e in executions if e.state is ExecutionState.SUCCESS]
    running = [e for e in executions if e.state in (ExecutionState.ACTIVE, ExecutionState.COMMITTING)]
    current = running[-1] if running else None
    latest = current or last
    return {
        "id": s.id,
        "valid": True,
        "invalidExecutionId": None,
        "transport": {"type": "API", "description": "com.domo.connector.api", "version": "0"},
        "updateMethod": s.update_method.value,
        "dataProvider": {"id": None, "key": "api", "name": "API", "type": "STANDARD"},
        "account": None,
        "accounts": [],
        "dataSource": datasource(d, level, s.id),
        "schemaDefinition": {
            "columns": [
                {
                    "type": c.type.value,
                    "name": c.name,
                    "id": c.name,
                    "visible": True,
                    "metadata": {"colLabel": c.name, "colFormat": "", "isEncrypted": False},
                }
                for c in d.columns
            ]
        },
        "scheduleExpression": None,
        "scheduleStartDate": None,
        "advancedScheduleJson": MANUAL_SCHEDULE,
        "scheduleRetryExpression": None,
        "scheduleRetryCount": 0,
        "lastExecution": execution(last) if last else None,
        "lastSuccessfulExecution": execution(succeeded[-1]) if succeeded else None,
        "currentExecution": execution(current) if current else None,
        "currentExecutionState": STATE[latest.state] if latest else "IDLE",
        "createdAt": epoch_seconds(s.created_at),
        "createdBy": d.owner.id,
        "modifiedAt": epoch_seconds(s.modified_at),
        "modifiedBy": d.owner.id,
        "scheduleState": "MANUAL",
        "scheduleAssertion": False,
        "inactiveScheduleCode": None,
        "configuration": [],
        **(connector or {}),
    }


def requested(fields: str | None, *, default: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The keys ``fields`` asks for, None meaning all of them; absent or empty: ``default``.
    A name that is no Stream key is 400 listing the known ones."""
    names = tuple(name.strip() for name in (fields or "").split(",") if name.strip())
    if not names:
        return default
    unknown = [name for name in names if name not in KNOWN_FIELDS and name.lower() != "all"]
    if unknown:
        raise BadRequest(
            f"unknown field {', '.join(repr(n) for n in unknown)} in 'fields'; the known fields are all, "
            + ", ".join(KNOWN_FIELDS)
        )
    return None if any(name.lower() == "all" for name in names) else names


def representation(
    request: Request,
    actor: Actor,
    found: StreamView | Tombstone,
    names: tuple[str, ...] | None,
    *,
    status: str = "active",
) -> dict[str, Any]:
    """``found`` with the keys ``names`` asks for (None: all). The full object, which reads the
    dataset's permissions and the stream's executions, is built only when a key needs it."""
    if isinstance(found, Tombstone):
        body = tombstone(found, full=names is None or not set(names) <= set(DEFAULT_FIELDS))
        if names == DEFAULT_FIELDS:
            names = (*names, "deleted")  # the default representation says why the stream is not valid
    elif names is not None and set(names) <= set(DEFAULT_FIELDS):
        body = summary(found, status=status)
    else:
        services = request.app.state.services
        _, level = services.sharing.own_level(actor=actor, dataset_id=found.dataset.id)
        settings = found.stream.connector
        extra = (
            None
            if settings is None
            else connector_fields(found.stream.id, settings, services.connector_streams)
        )
        full = stream(found, level, all_executions(request, actor, found.stream.id), extra)
        body = {**summary(found, status=status), **full}
    if names is None:
        return body
    return {key: value for key, value in body.items() if key in names}


def all_executions(request: Request, actor: Actor, stream_id: PathId) -> list[Execution]:
    """Every execution of the stream, oldest first (the service pages at most 500 at a time)."""
    found: list[Execution] = []
    while True:
        page = request.app.state.services.streams.list_executions(
            actor=actor, stream_id=stream_id, limit=HISTORY_PAGE, offset=len(found)
        )
        found.extend(page)
        if len(page) < HISTORY_PAGE:
            return found


@router.post("")
async def create_stream(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    names = requested(request.query_params.get("fields"), default=None)
    body = await json_object(request)
    source = body.get("dataSource")
    if not isinstance(source, dict) or not isinstance(source.get("name"), str) or not source["name"].strip():
        raise BadRequest("dataSource must be an object with a non-empty 'name'")
    description = source.get("description")
    spec = connector_spec(body)
    services = request.app.state.services
    created = dict(
        actor=actor,
        name=source["name"],
        description=description if isinstance(description, str) else "",
        columns=render.parse_columns(body.get("schemaDefinition") or {"columns": []}),
        update_method=update_method(body.get("updateMethod")) or UpdateMethod.REPLACE,
    )
    if spec is None:
        view = await run_in_threadpool(services.streams.create, **created)
    else:
        view = await run_in_threadpool(services.connector_streams.create, **created, spec=spec)
    body = await run_in_threadpool(representation, request, actor, view, names, status="created")
    return json_response(body, status=201)


@router.get("")
def list_streams(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    """A page of the streams the caller can see (tombstones left out), oldest first."""
    query = request.query_params
    names = requested(query.get("fields"), default=DEFAULT_FIELDS)
    views = request.app.state.services.streams.list_streams(
        actor=actor, limit=int_param(query, "limit", 50), offset=int_param(query, "offset", 0)
    )
    return json_response([representation(request, actor, view, names) for view in views])


@router.get("/{stream_id}")
def get_stream(stream_id: PathId, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    known_id(stream_id, "stream")
    names = requested(request.query_params.get("fields"), default=DEFAULT_FIELDS)
    found = request.app.state.services.streams.read(actor=actor, stream_id=stream_id)
    return json_response(representation(request, actor, found, names))


@router.put("/{stream_id}")
async def update_stream(
    stream_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    known_id(stream_id, "stream")
    names = requested(request.query_params.get("fields"), default=None)
    body = await json_object(request, required=False)
    change_method = request.query_params.get("changeUpdateMethod", "true").strip().lower() != "false"
    services = request.app.state.services
    view = await run_in_threadpool(
        services.streams.update,
        actor=actor,
        stream_id=stream_id,
        update_method=update_method(body.get("updateMethod")) if change_method else None,
        columns=schema_change(body.get("schemaDefinition")),
        **data_source_change(body.get("dataSource")),
    )
    spec = connector_spec(body, existing=view.stream.connector)
    if spec is not None:
        view = await run_in_threadpool(services.connector_streams.update, actor=actor, view=view, spec=spec)
    return json_response(await run_in_threadpool(representation, request, actor, view, names))


def schema_change(value: Any) -> list[Column] | None:
    """``schemaDefinition`` of a PUT: its ``columns`` (extra keys such as ``id`` or ``metadata`` are
    ignored), or None when absent."""
    if value is None:
        return None
    try:
        return render.parse_columns(value)
    except BadRequest as exc:
        raise BadRequest(f"schemaDefinition: {exc.message}") from None


def data_source_change(value: Any) -> dict[str, str]:
    """``dataSource.name`` and ``dataSource.description`` of a PUT, those present and not null."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("dataSource must be an object")
    changes: dict[str, str] = {}
    name, description = value.get("name"), value.get("description")
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("dataSource.name must be a non-empty string")
        changes["name"] = name
    if description is not None:
        if not isinstance(description, str):
            raise BadRequest("dataSource.description must be a string")
        changes["description"] = description
    return changes


@router.get("/{stream_id}/history/aggregate")
def history(stream_id: PathId, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    known_id(stream_id, "stream")
    limit = max(0, int_param(request.query_params, "limit", 1000))
    newest_first = all_executions(request, actor, stream_id)[::-1][:limit]
    return json_response([aggregate(e) for e in newest_first])


@router.post("/{stream_id}/executions")
async def create_execution(
    stream_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    known_id(stream_id, "stream")
    body = await json_object(request, required=False)
    services = request.app.state.services
    found = await run_in_threadpool(services.streams.get, actor=actor, stream_id=stream_id)
    if found.stream.connector is not None:
        abort_running = request.query_params.get("abortRunning", "false").strip().lower() == "true"
        created = await run_in_threadpool(
            services.connector_runs.start, actor=actor, stream_id=stream_id, abort_running=abort_running
        )
    else:
        created = await run_in_threadpool(
            services.streams.create_execution,
            actor=actor,
            stream_id=stream_id,
            update_method=update_method(body.get("updateMethod")),
        )
    # The seed document's {"executionId", "status": "started"} beside Domo's execution object.
    return json_response({**execution(created, started_by=actor.user.id), "status": "started"})


@router.get("/{stream_id}/executions/{execution_id}")
def get_execution(
    stream_id: PathId, execution_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    known_id(stream_id, "stream")
    known_id(execution_id, "execution")
    found = request.app.state.services.streams.get_execution(
        actor=actor, stream_id=stream_id, execution_id=execution_id
    )
    return json_response(execution(found))


@router.put("/{stream_id}/executions/{execution_id}/part/{part_id}")
async def upload_part(
    stream_id: PathId,
    execution_id: PathId,
    part_id: PathId,
    request: Request,
    actor: Actor = Depends(current_actor),
) -> Response:
    known_id(stream_id, "stream")
    known_id(execution_id, "execution")
    known_id(part_id, "part")
    uploaded = await receive_part(request, actor, stream_id, execution_id, part_id)
    return json_response(execution(uploaded.execution))


@router.put("/{stream_id}/executions/{execution_id}/commit")
async def commit(
    stream_id: PathId, execution_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    known_id(stream_id, "stream")
    known_id(execution_id, "execution")
    await json_object(request, required=False)
    committed = await run_in_threadpool(
        request.app.state.services.streams.commit, actor=actor, stream_id=stream_id, execution_id=execution_id
    )
    return json_response(execution(committed))


@router.put("/{stream_id}/executions/{execution_id}/abort")
async def abort(
    stream_id: PathId, execution_id: PathId, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    """Abort a push execution or a connector run (body: Domo's optional AbortReason, ignored)."""
    known_id(stream_id, "stream")
    known_id(execution_id, "execution")
    await json_object(request, required=False)
    aborted = await run_in_threadpool(
        request.app.state.services.streams.abort, actor=actor, stream_id=stream_id, execution_id=execution_id
    )
    return json_response(execution(aborted))
