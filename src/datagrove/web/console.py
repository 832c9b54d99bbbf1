"""The SQL console, ``/ui/sql``: the same query service as ``POST /api/query/v1/execute/{id}`` (row-level
policies, limits and the sandbox apply alike), as the signed-in user.

* ``GET /ui/sql[?dataset=ID]`` the page: editor, the datasets one may query, the chosen one's columns.
* ``POST /ui/sql`` (form) the page again with the first rows of the answer: the console without script.
* ``POST /ui/sql/run`` (JSON ``{dataset, sql}``) the first ``SHOWN_ROWS`` rows for the script's grid
  and chart: ``{columns: [{name, type}], rows, rowCount, truncated, seconds}``.
* ``POST /ui/sql/download`` (form) every row of the answer as a CSV file.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from datagrove.api.bodies import json_object
from datagrove.domain import Actor, Dataset
from datagrove.errors import BadRequest, DatagroveError
from datagrove.services.query import RowForm
from datagrove.services.web_sessions import WebSession
from datagrove.web.answers import ShownAnswer, csv_chunks, read_shown
from datagrove.web.render import page
from datagrove.web.session import csrf_checked_session, current_web_session

router = APIRouter(prefix="/ui/sql", include_in_schema=False)

LISTED_DATASETS = 500
PAGE_ROWS = 50  # what the page shows without script


def _datasets(request: Request, actor: Actor) -> list[Dataset]:
    services = request.app.state.services
    return list(services.datasets.list_datasets(actor=actor, limit=LISTED_DATASETS, offset=0, sort="name"))


def _console(
    request: Request,
    session: WebSession,
    *,
    dataset_id: str,
    sql: str,
    shown: ShownAnswer | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    datasets = _datasets(request, session.actor)
    chosen = next((d for d in datasets if d.id == dataset_id), None)
    if chosen is None and not dataset_id and datasets:
        chosen = datasets[0]
    if chosen is None and dataset_id and not error:
        # Asked for by id but not listed: the service says why (404 for one the user may not view).
        try:
            chosen = request.app.state.services.datasets.get(actor=session.actor, dataset_id=dataset_id)
        except DatagroveError as exc:
            error, status = exc.message, exc.status
    default_sql = "SELECT * FROM table LIMIT 100"
    return page(
        request,
        "console.html",
        session=session,
        title="SQL",
        section="sql",
        status=status,
        datasets=datasets,
        chosen=chosen,
        sql=sql or default_sql,
        shown=shown,
        shown_rows=shown.rows[:PAGE_ROWS] if shown else [],
        error=error,
    )


@router.get("")
async def console_page(request: Request, session: WebSession = Depends(current_web_session)) -> Response:
    dataset_id = request.query_params.get("dataset", "")
    return await run_in_threadpool(
        _console, request, session, dataset_id=dataset_id, sql=request.query_params.get("sql", "")
    )


def _run(request: Request, actor: Actor, dataset_id: str, sql: str) -> ShownAnswer:
    if not dataset_id:
        raise BadRequest("choose a dataset to query")
    if not sql.strip():
        raise BadRequest("write a query first, e.g. SELECT * FROM table LIMIT 10")
    started = time.monotonic()
    answer = request.app.state.services.query.execute(
        actor=actor, dataset_id=dataset_id, sql=sql, form=RowForm.ARRAYS
    )
    return read_shown(answer, started=started)


@router.post("")
async def console_form(request: Request, session: WebSession = Depends(csrf_checked_session)) -> Response:
    form = await request.form()
    dataset_id, sql = str(form.get("dataset", "")), str(form.get("sql", ""))
    try:
        shown = await run_in_threadpool(_run, request, session.actor, dataset_id, sql)
    except DatagroveError as exc:
        return await run_in_threadpool(
            _console, request, session, dataset_id=dataset_id, sql=sql, error=exc.message, status=exc.status
        )
    return await run_in_threadpool(_console, request, session, dataset_id=dataset_id, sql=sql, shown=shown)


@router.post("/run")
async def run_query(request: Request, session: WebSession = Depends(csrf_checked_session)) -> dict[str, Any]:
    body = await json_object(request)
    dataset_id, sql = body.get("dataset"), body.get("sql")
    if not isinstance(dataset_id, str) or not isinstance(sql, str):
        raise BadRequest('send {"dataset": "<id>", "sql": "SELECT ..."}')
    shown = await run_in_threadpool(_run, request, session.actor, dataset_id, sql)
    return shown.as_json()


@router.post("/download")
async def download(request: Request, session: WebSession = Depends(csrf_checked_session)) -> Response:
    form = await request.form()
    dataset_id, sql = str(form.get("dataset", "")), str(form.get("sql", ""))
    if not dataset_id or not sql.strip():
        raise BadRequest("choose a dataset and write a query before downloading")
    services = request.app.state.services
    answer = await run_in_threadpool(
        services.query.execute, actor=session.actor, dataset_id=dataset_id, sql=sql, form=RowForm.ARRAYS
    )
    # The first chunk is read before answering, so that most errors are a page, not a cut file.
    try:
        first = await run_in_threadpool(next, iter(answer), None)
    except BaseException:
        answer.close()
        raise
    return StreamingResponse(
        csv_chunks(answer, first),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{answer.dataset_id}-query.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
