"""``GET /openapi.json``, ``GET /docs`` and ``GET /docs/assets/{name}``: the API description.

Open without a credential (the document holds no data) and served entirely by this server, so the
reference page works with no internet. The ``api_docs`` setting off: none of these routes exists
(404 like any unknown path).
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import FileResponse, HTMLResponse, Response

from datagrove.api.openapi.document import build
from datagrove.api.responses import json_response
from datagrove.errors import NotFound

ASSETS = Path(__file__).parent / "assets"
#: The files /docs/assets serves, and their types: nothing else in the directory is served.
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
}

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{root}/docs/assets/swagger-ui.css">
</head>
<body data-openapi-url="{openapi_url}">
<noscript>The reference needs JavaScript; the document itself is at <a href="{openapi_url}">{openapi_url}</a>.</noscript>
<div id="swagger-ui"></div>
<script src="{root}/docs/assets/swagger-ui-bundle.js"></script>
<script src="{root}/docs/assets/docs.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Serve the description from ``app`` and make ``app.openapi()`` answer it."""
    app.openapi = lambda: _document(app)  # type: ignore[method-assign]
    app.include_router(router)


def _document(app: FastAPI) -> dict[str, Any]:
    # Built once, on first request: the routes do not change while the server runs.
    if app.openapi_schema is None:
        app.openapi_schema = build(app)
    return app.openapi_schema


@router.get("/openapi.json")
def openapi_document(request: Request) -> Response:
    return json_response(request.app.openapi())


@router.get("/docs")
def reference_page(request: Request) -> Response:
    root = escape(request.scope.get("root_path", "").rstrip("/"))
    return HTMLResponse(
        PAGE.format(title="Datagrove API reference", root=root, openapi_url=f"{root}/openapi.json")
    )


@router.get("/docs/assets/{name}")
def asset(name: str) -> Response:
    media_type = ASSET_TYPES.get(name)
    if media_type is None:
        raise NotFound(f"no such asset: {name}")
    # Cached for a day: the files change only with a Datagrove release.
    return FileResponse(
        ASSETS / name, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
    )
