"""Who is using the pages: the session cookie, and the dependencies every page declares.

* ``current_web_session`` (GET pages): the signed-in person's ``WebSession`` (``.actor`` for service
  calls, ``.user``, ``.csrf_token``). Without a live session the request is answered by a redirect
  to the sign-in page (a page) or a 401 JSON error (a script's ``fetch``): see ``web.errors``.
* ``csrf_checked_session`` (every POST/PUT/PATCH/DELETE web route): the same, and the session's
  CSRF token must come in the form field ``csrf_token`` or the ``X-CSRF-Token`` header (403 if not).
"""

from __future__ import annotations

from fastapi import Depends, Request

from datagrove.errors import Forbidden
from datagrove.services.web_sessions import WebSession

SESSION_COOKIE = "dg_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def current_web_session(request: Request) -> WebSession:
    session: WebSession = request.app.state.services.web_sessions.session(request.cookies.get(SESSION_COOKIE))
    request.state.actor = session.actor  # for the request log line
    request.state.web_session = session
    return session


async def csrf_checked_session(
    request: Request, session: WebSession = Depends(current_web_session)
) -> WebSession:
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)  # Starlette keeps the parsed form for the route
        presented = value if isinstance(value, str) else None
    if not request.app.state.services.web_sessions.csrf_ok(session, presented):
        raise Forbidden("the form's security token is missing or out of date: reload the page and try again")
    return session


def source_address(request: Request) -> str:
    """The peer's address (a proxy's X-Forwarded-For is not trusted: it is the client's to forge)."""
    return request.client.host if request.client else "unknown"


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def wants_json(request: Request) -> bool:
    """A script's request (``fetch`` asks for ``*/*``), not a page the browser navigates to."""
    return "text/html" not in request.headers.get("accept", "")
