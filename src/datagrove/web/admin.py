"""Admin pages: users (``/ui/admin/users``), groups (``/ui/admin/groups``) and the activity log
(``/ui/admin/activity``). Each page first asks ``access.py`` for the action it shows (MANAGE_USERS,
MANAGE_GROUPS, READ_AUDIT): anyone else gets 403. The forms call the services behind ``/v1/users``
and ``/v1/groups``, which check again."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api.params import PathId
from datagrove.domain import Role
from datagrove.errors import BadRequest, DatagroveError
from datagrove.services.access import Action
from datagrove.services.people import parse_role
from datagrove.services.web_sessions import WebSession
from datagrove.web.render import page, redirect
from datagrove.web.session import csrf_checked_session, current_web_session

router = APIRouter(prefix="/ui/admin", include_in_schema=False)

PAGE_SIZE = 50
ALL_USERS = 1000  # the most users a member picker or a filter lists
ROLES = [role.value for role in Role]


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, int(raw)) if raw.isdigit() else 1


def _back(path: str, **message: str) -> Response:
    """After a form: back to ``path``, with a notice that the next page shows."""
    return redirect(path + ("?" + urlencode(message) if message else ""))


# --- users ----------------------------------------------------------------------------------------


def _users_page(request: Request, session: WebSession, *, error: str = "", status: int = 200) -> Response:
    services = request.app.state.services
    services.access.require(session.actor, Action.MANAGE_USERS)
    number = _page_number(request)
    people = services.people.list_users(
        actor=session.actor, limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE
    )
    return page(
        request,
        "admin_users.html",
        session=session,
        title="Users",
        section="admin",
        status=status,
        people=people[:PAGE_SIZE],
        page_number=number,
        has_next=len(people) > PAGE_SIZE,
        roles=ROLES,
        notice=request.query_params.get("notice", ""),
        error=error,
    )


@router.get("/users")
async def users_page(request: Request, session: WebSession = Depends(current_web_session)) -> Response:
    return await run_in_threadpool(_users_page, request, session)


async def _form_action(request: Request, session: WebSession, back: str, action: Any) -> Response:
    """Run ``action(form)`` in a worker thread; back to ``back`` with its notice, or the page
    again with the error (as the API would have said it)."""
    form = await request.form()
    try:
        notice = await run_in_threadpool(action, form)
    except DatagroveError as exc:
        pages = {"/ui/admin/users": _users_page, "/ui/admin/groups": _groups_page}
        return await run_in_threadpool(pages[back], request, session, error=exc.message, status=exc.status)
    return _back(back, notice=notice)


@router.post("/users")
async def create_user(request: Request, session: WebSession = Depends(csrf_checked_session)) -> Response:
    services = request.app.state.services

    def create(form: Any) -> str:
        person = services.people.create_user(
            actor=session.actor,
            name=str(form.get("name", "")),
            email=str(form.get("email", "")),
            role=parse_role(form.get("role", Role.PARTICIPANT.value)),
        )
        password = str(form.get("password", ""))
        if password:
            services.passwords.set_password(actor=session.actor, user_id=person.user.id, password=password)
        return f"User {person.user.name} ({person.user.email}) was created."

    return await _form_action(request, session, "/ui/admin/users", create)


@router.post("/users/{user_id}/role")
async def changeparse_role(
    user_id: PathId, request: Request, session: WebSession = Depends(csrf_checked_session)
) -> Response:
    services = request.app.state.services

    def change(form: Any) -> str:
        person = services.people.update_user(
            actor=session.actor, user_id=user_id, role=parse_role(form.get("role"))
        )
        return f"{person.user.name} is now {person.user.role.value}."

    return await _form_action(request, session, "/ui/admin/users", change)


@router.post("/users/{user_id}/password")
async def set_password(
    user_id: PathId, request: Request, session: WebSession = Depends(csrf_checked_session)
) -> Response:
    services = request.app.state.services

    def set_it(form: Any) -> str:
        services.passwords.set_password(
            actor=session.actor, user_id=user_id, password=str(form.get("password", ""))
        )
        return f"The password of user {user_id} was set."

    return await _form_action(request, session, "/ui/admin/users", set_it)


# --- groups ---------------------------------------------------------------------------------------


def _groups_page(request: Request, session: WebSession, *, error: str = "", status: int = 200) -> Response:
    services = request.app.state.services
    services.access.require(session.actor, Action.MANAGE_GROUPS)
    number = _page_number(request)
    groups = services.people.list_groups(
        actor=session.actor, limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE
    )
    users = services.people.list_users(actor=session.actor, limit=ALL_USERS, offset=0)
    names = {person.user.id: person.user for person in users}
    members = {
        group.id: [
            names[member]
            for member in services.people.member_ids(actor=session.actor, group_id=group.id)
            if member in names
        ]
        for group in groups[:PAGE_SIZE]
    }
    return page(
        request,
        "admin_groups.html",
        session=session,
        title="Groups",
        section="admin",
        status=status,
        groups=groups[:PAGE_SIZE],
        members=members,
        users=[person.user for person in users],
        page_number=number,
        has_next=len(groups) > PAGE_SIZE,
        notice=request.query_params.get("notice", ""),
        error=error,
    )


@router.get("/groups")
async def groups_page(request: Request, session: WebSession = Depends(current_web_session)) -> Response:
    return await run_in_threadpool(_groups_page, request, session)


@router.post("/groups")
async def create_group(request: Request, session: WebSession = Depends(csrf_checked_session)) -> Response:
    services = request.app.state.services

    def create(form: Any) -> str:
        group = services.people.create_group(actor=session.actor, name=str(form.get("name", "")))
        return f"Group {group.name} was created."

    return await _form_action(request, session, "/ui/admin/groups", create)


@router.post("/groups/{group_id}/members")
async def add_member(
    group_id: PathId, request: Request, session: WebSession = Depends(csrf_checked_session)
) -> Response:
    services = request.app.state.services

    def add(form: Any) -> str:
        raw = str(form.get("user_id", ""))
        if not raw.isdigit():
            raise BadRequest("choose a user to add")
        services.people.add_member(actor=session.actor, group_id=group_id, user_id=int(raw))
        return f"User {raw} was added to group {group_id}."

    return await _form_action(request, session, "/ui/admin/groups", add)


@router.post("/groups/{group_id}/members/{user_id}/remove")
async def remove_member(
    group_id: PathId, user_id: PathId, request: Request, session: WebSession = Depends(csrf_checked_session)
) -> Response:
    services = request.app.state.services

    def remove(_form: Any) -> str:
        services.people.remove_member(actor=session.actor, group_id=group_id, user_id=user_id)
        return f"User {user_id} was removed from group {group_id}."

    return await _form_action(request, session, "/ui/admin/groups", remove)


# --- the activity log -----------------------------------------------------------------------------


def _activity_page(request: Request, session: WebSession) -> Response:
    services = request.app.state.services
    services.access.require(session.actor, Action.READ_AUDIT)
    number = _page_number(request)
    user_raw = request.query_params.get("user", "")
    if user_raw and not user_raw.isdigit():
        raise BadRequest("user must be a user id")
    action = request.query_params.get("action", "").strip()
    entries = services.audit.entries(
        actor=session.actor,
        start=None,
        end=None,
        user_id=int(user_raw) if user_raw else None,
        action=action or None,
        limit=PAGE_SIZE + 1,
        offset=(number - 1) * PAGE_SIZE,
    )
    users = services.people.list_users(actor=session.actor, limit=ALL_USERS, offset=0)
    filters = {key: value for key, value in (("user", user_raw), ("action", action)) if value}
    return page(
        request,
        "admin_activity.html",
        session=session,
        title="Activity",
        section="admin",
        entries=entries[:PAGE_SIZE],
        users=[person.user for person in users],
        user_filter=user_raw,
        action_filter=action,
        page_number=number,
        has_next=len(entries) > PAGE_SIZE,
        filter_query=urlencode(filters),
    )


@router.get("/activity")
async def activity_page(request: Request, session: WebSession = Depends(current_web_session)) -> Response:
    return await run_in_threadpool(_activity_page, request, session)
