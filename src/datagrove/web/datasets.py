"""The datasets pages: ``/ui/datasets`` (the list) and ``/ui/datasets/{id}`` (one dataset), with its
share and revoke forms. Every read and write goes through the services the API uses, as the
signed-in person: what the API would hide (a dataset, a row, a column) the pages never show."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.domain import AccessLevel, Dataset, PrincipalType
from datagrove.errors import BadRequest, DatagroveError
from datagrove.services.access import Action
from datagrove.services.query import RowForm
from datagrove.services.sharing import ShareEntry
from datagrove.services.web_sessions import WebSession
from datagrove.web.render import page, redirect
from datagrove.web.session import csrf_checked_session, current_web_session

router = APIRouter()

LIST_PAGE = 25
PREVIEW_PAGE = 50
RECENT_EXECUTIONS = 10
HISTORY = 20
PEOPLE_CHOICES = 500
NOTICES = {"shared": "Shared.", "revoked": "Access revoked."}
# The list's sortable columns: key in the query string -> (heading, the datasets service's sort name).
SORTS = {
    "name": ("Name", "name"),
    "owner": ("Owner", "owner"),
    "rows": ("Rows", "rows"),
    "columns": ("Columns", "columns"),
    "updated": ("Last updated", "lastUpdated"),
}


def _int(request: Request, name: str, default: int = 0) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise BadRequest(f"{name} must be a whole number, not {value!r}")
    return int(value)


@router.get("/ui/datasets")
def dataset_list(request: Request, session: WebSession = Depends(current_web_session)) -> Response:
    search = request.query_params.get("q", "").strip()
    sort = request.query_params.get("sort", "name")
    key = sort.lstrip("-")
    if key not in SORTS:
        raise BadRequest(f"sort must be one of {', '.join(SORTS)} (with '-' for descending), not {sort!r}")
    descending = sort.startswith("-")
    offset = _int(request, "offset")
    found = request.app.state.services.datasets.list_datasets(
        actor=session.actor,
        limit=LIST_PAGE + 1,
        offset=offset,
        name_like=search or None,
        sort=("-" if descending else "") + SORTS[key][1],
    )
    return page(
        request,
        "datasets.html",
        session=session,
        title="Datasets",
        section="datasets",
        datasets=found[:LIST_PAGE],
        has_more=len(found) > LIST_PAGE,
        search=search,
        sort_key=key,
        descending=descending,
        sorts=SORTS,
        offset=offset,
        limit=LIST_PAGE,
    )


@dataclass(frozen=True)
class Preview:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    has_more: bool
    offset: int
    error: str = ""


def _preview(request: Request, session: WebSession, dataset: Dataset, offset: int) -> Preview:
    """A page of the dataset's rows as the query API would answer them to this person (row-level
    policies applied by the query service). A query error is shown in place of the rows."""
    try:
        answer = request.app.state.services.query.execute(
            actor=session.actor,
            dataset_id=dataset.id,
            sql=f"SELECT * FROM `table` LIMIT {PREVIEW_PAGE + 1} OFFSET {offset}",
            form=RowForm.ARRAYS,
        )
        try:
            rows = json.loads(b"[" + b"".join(answer) + b"]")
        finally:
            answer.close()
    except DatagroveError as exc:
        if exc.status >= 500:
            raise
        return Preview([], [], [], False, offset, error=exc.message)
    return Preview(
        list(answer.columns), list(answer.types), rows[:PREVIEW_PAGE], len(rows) > PREVIEW_PAGE, offset
    )


def _dataset_page(
    request: Request, session: WebSession, dataset_id: str, *, message: str = "", status: int = 200
) -> Response:
    services = request.app.state.services
    actor = session.actor
    dataset, level = services.sharing.own_level(actor=actor, dataset_id=dataset_id)  # 404 if hidden
    decide = services.access.decide
    may_share = decide(actor, Action.SHARE, dataset).allowed
    may_revoke = decide(actor, Action.REVOKE, dataset).allowed
    may_see_policies = decide(actor, Action.MANAGE_POLICIES, dataset).allowed
    streams = services.streams.list_streams(actor=actor, limit=5, offset=0, dataset_id=dataset.id)
    executions = {
        view.stream.id: services.streams.list_executions(
            actor=actor, stream_id=view.stream.id, limit=RECENT_EXECUTIONS, offset=0, newest_first=True
        )
        for view in streams
    }
    people: list[Any] = []
    groups: list[Any] = []
    if may_share:
        people = services.people.list_users(actor=actor, limit=PEOPLE_CHOICES, offset=0)
        groups = services.people.list_groups(actor=actor, limit=PEOPLE_CHOICES, offset=0)
    return page(
        request,
        "dataset.html",
        session=session,
        title=dataset.name,
        section="datasets",
        status=status,
        message=message,
        notice="" if message else NOTICES.get(request.query_params.get("notice", ""), ""),
        dataset=dataset,
        level=level,
        preview=_preview(request, session, dataset, _int(request, "offset")),
        streams=streams,
        executions=executions,
        grants=services.sharing.grants(actor=actor, dataset_id=dataset.id),
        may_share=may_share,
        may_revoke=may_revoke,
        levels=[lvl for lvl in AccessLevel if lvl.rank <= level.rank],
        people=people,
        groups=groups,
        policies=services.policies.list_policies(actor=actor, dataset_id=dataset.id)
        if may_see_policies
        else None,
        versions=services.versions.list_versions(actor=actor, dataset_id=dataset.id, limit=HISTORY, offset=0),
        preview_limit=PREVIEW_PAGE,
    )


@router.get("/ui/datasets/{dataset_id}")
def dataset_page(
    dataset_id: str, request: Request, session: WebSession = Depends(current_web_session)
) -> Response:
    return _dataset_page(request, session, dataset_id)


def _principal(value: object) -> tuple[PrincipalType, int]:
    """``USER:12`` or ``GROUP:3``, as the share form's choices are written."""
    kind, _, number = str(value or "").partition(":")
    if kind not in PrincipalType.__members__ or not number.isdigit():
        raise BadRequest("choose a user or a group to share with")
    return PrincipalType(kind), int(number)


def _level(value: object) -> AccessLevel:
    try:
        return AccessLevel.parse(value or "")
    except ValueError:
        raise BadRequest(f"level must be one of {', '.join(AccessLevel)}, not {value!r}") from None


async def _form_action(
    request: Request, session: WebSession, dataset_id: str, action: Any, done: str
) -> Response:
    """Run a form's service call; on an error show the dataset page again with the API's message."""
    form = await request.form()
    try:
        await run_in_threadpool(action, form)
    except DatagroveError as exc:
        if exc.status >= 500 or exc.status == 404:
            raise
        return await run_in_threadpool(
            _dataset_page, request, session, dataset_id, message=exc.message, status=exc.status
        )
    return redirect(f"/ui/datasets/{dataset_id}?notice={done}#access")


@router.post("/ui/datasets/{dataset_id}/share")
async def share(
    dataset_id: str, request: Request, session: WebSession = Depends(csrf_checked_session)
) -> Response:
    def act(form: Any) -> None:
        principal_type, principal_id = _principal(form.get("principal"))
        request.app.state.services.sharing.share(
            actor=session.actor,
            dataset_id=dataset_id,
            entries=[ShareEntry(principal_type, principal_id, _level(form.get("level")))],
        )

    return await _form_action(request, session, dataset_id, act, "shared")


@router.post("/ui/datasets/{dataset_id}/revoke")
async def revoke(
    dataset_id: str, request: Request, session: WebSession = Depends(csrf_checked_session)
) -> Response:
    def act(form: Any) -> None:
        principal_type, principal_id = _principal(form.get("principal"))
        request.app.state.services.sharing.revoke(
            actor=session.actor,
            dataset_id=dataset_id,
            principal_type=principal_type,
            principal_id=principal_id,
        )

    return await _form_action(request, session, dataset_id, act, "revoked")
