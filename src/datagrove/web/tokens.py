"""``/ui/account/tokens``: the signed-in user's own developer tokens (the service of
``/api/data/v1/accesstokens``). A new token's value is shown once, on the page that answers its
creation; only its digest is kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api.params import PathId
from datagrove.domain import AccessToken
from datagrove.errors import BadRequest, DatagroveError
from datagrove.services.web_sessions import WebSession
from datagrove.web.render import page, redirect
from datagrove.web.session import csrf_checked_session, current_web_session

router = APIRouter(prefix="/ui/account/tokens", include_in_schema=False)

MAX_DAYS = 3650


def _own_tokens(request: Request, session: WebSession) -> list[AccessToken]:
    # An admin's list holds everyone's tokens; this page is about one's own.
    tokens = request.app.state.services.auth.developer_tokens(actor=session.actor)
    return [token for token in tokens if token.user_id == session.user.id]


def _tokens_page(
    request: Request,
    session: WebSession,
    *,
    created: tuple[AccessToken, str] | None = None,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    return page(
        request,
        "tokens.html",
        session=session,
        title="My tokens",
        section="tokens",
        status=status,
        tokens=_own_tokens(request, session),
        created=created,
        notice=notice,
        error=error,
    )


@router.get("")
async def tokens_page(request: Request, session: WebSession = Depends(current_web_session)) -> Response:
    revoked = request.query_params.get("revoked", "")
    notice = f"Token {revoked!r} was revoked: it no longer works." if revoked else ""
    return await run_in_threadpool(_tokens_page, request, session, notice=notice)


def _expiry(days: str) -> datetime | None:
    if not days.strip():
        return None
    if not days.strip().isdigit() or not 1 <= int(days) <= MAX_DAYS:
        raise BadRequest(f"expires in: a whole number of days from 1 to {MAX_DAYS}, or empty for never")
    return datetime.now(UTC) + timedelta(days=int(days))


@router.post("")
async def create_token(request: Request, session: WebSession = Depends(csrf_checked_session)) -> Response:
    form = await request.form()
    name = str(form.get("name", "")).strip()
    try:
        if not name:
            raise BadRequest("name the token, e.g. after the script or machine that will use it")
        created = await run_in_threadpool(
            request.app.state.services.auth.issue_developer_token,
            actor=session.actor,
            owner_id=session.user.id,
            name=name,
            expires_at=_expiry(str(form.get("expires_days", ""))),
        )
    except DatagroveError as exc:
        return await run_in_threadpool(_tokens_page, request, session, error=exc.message, status=exc.status)
    return await run_in_threadpool(_tokens_page, request, session, created=created)


@router.post("/{token_id}/revoke")
async def revoke_token(
    token_id: PathId, request: Request, session: WebSession = Depends(csrf_checked_session)
) -> Response:
    revoked = await run_in_threadpool(
        request.app.state.services.auth.revoke_developer_token, actor=session.actor, token_id=token_id
    )
    return redirect("/ui/account/tokens?" + urlencode({"revoked": revoked.name}))
