"""Rendering pages: the Jinja2 templates (autoescaped) and the headers every page carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, RedirectResponse

from datagrove import __version__
from datagrove.services.access import Action
from datagrove.services.web_sessions import WebSession

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=TEMPLATES_DIR)

# Everything is served by this server: no inline script, no other origin, no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# The header's navigation: (key, label, href); "admin" is shown to those who may manage users.
NAVIGATION = (
    ("datasets", "Datasets", "/ui/datasets"),
    ("sql", "SQL", "/ui/sql"),
    ("upload", "Upload", "/ui/upload"),
    ("connectors", "Connectors", "/ui/connectors"),
    ("admin", "Admin", "/ui/admin/users"),
    ("tokens", "My tokens", "/ui/account/tokens"),
)


def page(
    request: Request,
    template: str,
    *,
    session: WebSession | None,
    title: str,
    section: str = "",
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered inside the layout. ``section`` is the navigation key shown as current."""
    navigation = []
    if session is not None:
        is_admin = request.app.state.services.access.decide(session.actor, Action.MANAGE_USERS).allowed
        navigation = [item for item in NAVIGATION if item[0] != "admin" or is_admin]
    response = templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "csrf_token": session.csrf_token if session else context.pop("csrf_token", ""),
            "navigation": navigation,
            "section": section,
            "title": title,
            "version": __version__,
            **context,
        },
        status_code=status,
    )
    response.headers.update(PAGE_HEADERS)
    return response


def redirect(url: str) -> RedirectResponse:
    """After a form: 303, so the browser GETs the next page (reloading it does not post again)."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
