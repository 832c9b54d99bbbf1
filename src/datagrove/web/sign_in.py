"""Signing in (``GET /``, ``POST /ui/sign-in``) and out (``POST /ui/sign-out``).

The sign-in form has no session yet, so its CSRF token is a random value kept in a cookie of its
own (``dg_sign_in``) and echoed by the form: another site cannot read the cookie to forge the post.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.errors import Forbidden, TooManyRequests, Unauthorized
from datagrove.services.web_sessions import WebSession
from datagrove.web.render import page, redirect
from datagrove.web.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    csrf_checked_session,
    is_https,
    source_address,
    wants_json,
)

router = APIRouter()

SIGN_IN_COOKIE = "dg_sign_in"
HOME = "/ui/datasets"


def _next_page(value: object) -> str:
    """Where to go after signing in: a page of ours only (never another site)."""
    if isinstance(value, str) and value.startswith("/ui/") and "//" not in value and "\\" not in value:
        return value
    return HOME


def _sign_in_page(
    request: Request, *, next_page: str, message: str = "", status: int = 200, email: str = ""
) -> Response:
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)
    response = page(
        request,
        "sign_in.html",
        session=None,
        title="Sign in",
        status=status,
        csrf_token=token,
        next_page=next_page,
        message=message,
        email=email,
    )
    response.set_cookie(
        SIGN_IN_COOKIE, token, httponly=True, samesite="lax", secure=is_https(request), path="/"
    )
    return response


@router.get("/")
def home(request: Request) -> Response:
    """The sign-in form; a signed-in person goes straight on to the datasets."""
    next_page = _next_page(request.query_params.get("next"))
    try:
        request.app.state.services.web_sessions.session(request.cookies.get(SESSION_COOKIE))
    except Unauthorized:
        return _sign_in_page(request, next_page=next_page)
    return redirect(next_page)


@router.post("/ui/sign-in")
async def sign_in(request: Request) -> Response:
    form = await request.form()
    presented, expected = form.get(CSRF_FIELD), request.cookies.get(SIGN_IN_COOKIE)
    if not (isinstance(presented, str) and expected and hmac.compare_digest(presented, expected)):
        raise Forbidden("the sign-in form is out of date: reload the page and try again")
    next_page = _next_page(form.get("next"))
    email, password, token = (str(form.get(key) or "") for key in ("email", "password", "token"))
    sessions = request.app.state.services.web_sessions
    try:
        if token:
            signed_in = await run_in_threadpool(
                sessions.sign_in_with_token, token=token, source_address=source_address(request)
            )
        elif email and password:
            signed_in = await run_in_threadpool(
                sessions.sign_in_with_password,
                email=email,
                password=password,
                source_address=source_address(request),
            )
        else:
            raise Unauthorized("enter your email and password, or a developer token")
    except (Unauthorized, TooManyRequests) as exc:
        if wants_json(request):
            raise
        response = _sign_in_page(
            request, next_page=next_page, message=exc.message, status=exc.status, email=email
        )
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.details["retryAfterSeconds"])
        return response
    response = redirect(next_page)
    response.set_cookie(
        SESSION_COOKIE,
        signed_in.cookie_value,
        max_age=request.app.state.settings.web_session_max_seconds,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        path="/",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/")
    return response


@router.post("/ui/sign-out")
def sign_out(request: Request, session: WebSession = Depends(csrf_checked_session)) -> Response:
    request.app.state.services.web_sessions.sign_out(request.cookies.get(SESSION_COOKIE, ""))
    response = redirect("/")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request))
    return response
