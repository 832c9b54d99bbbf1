"""The web interface: pages for people, one more thin adapter over the services (like ``api/``).

``install(app)`` adds the page routers (``/`` and ``/ui/...``), the static assets (``/static/...``)
and the error rendering of web paths. How to add a page: /work/notes/web-skeleton.md and the
docstring of ``datagrove.web.session``.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from datagrove.web import errors
from datagrove.web.admin import router as admin_router
from datagrove.web.connectors import router as connectors_router
from datagrove.web.console import router as console_router
from datagrove.web.datasets import router as datasets_router
from datagrove.web.render import STATIC_DIR
from datagrove.web.sign_in import router as sign_in_router
from datagrove.web.tokens import router as tokens_router
from datagrove.web.upload import router as upload_router

# Every router of web pages; web-tools' pages are added to this tuple.
ROUTERS = (
    sign_in_router,
    datasets_router,
    console_router,
    upload_router,
    admin_router,
    tokens_router,
    connectors_router,
)


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    errors.install(app)
