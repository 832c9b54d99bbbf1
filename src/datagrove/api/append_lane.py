"""The one-row append's own lane past FastAPI's routing (``POST /api/data/v3/datasources/{id}/uploads``
with ``{"values", "delimiter"}``).

It is the one endpoint built for thousands of requests a second, and most of such a request's time
went to matching it against every route and solving its parameters (bench/RESULTS.md, "One-row
appends"). This middleware recognises the path itself, reads the body once, and hands a one-row
append straight to the same handler the route uses (``api/product/uploads.append_row``), rendering
errors as every route does. Any other request, and any other body on that path (an upload session),
goes on to the app untouched, its body handed on as it came.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datagrove import metrics
from datagrove.api.bodies import parse_json_object, read_body
from datagrove.api.errors import render_error
from datagrove.api.product.uploads import append_row, is_one_row_append
from datagrove.api.security import presented_credential
from datagrove.errors import DatagroveError

UPLOADS_PATH = re.compile(r"/api/data/v3/datasources/([^/]+)/uploads/?")
LANE_ROUTE = "/api/data/v3/datasources/{dataset_id}/uploads"  # the template of the route it stands for


class AppendLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = UPLOADS_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope[metrics.ROUTE_KEY] = LANE_ROUTE  # routing, if the request goes on to it, names its own
        request = Request(scope, receive)
        try:
            credential = presented_credential(request)  # 401 first, as for every route
            raw = await read_body(request)
            body = parse_json_object(raw, required=False)
            if not is_one_row_append(body):
                await self.app(scope, _replaying(raw, receive), send)
                return
            response = await append_row(match.group(1), body, request, credential)
        except DatagroveError as exc:
            response = render_error(request, exc)
        await response(scope, receive, send)


def _replaying(raw: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands on the body already read, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replay
