"""The most polled reads' own lane past FastAPI's routing: ``GET /health``, a dataset's metadata
(``GET /v1/datasets/{id}``), the stream list (``GET /v1/streams``) and an execution's state
(``GET /v1/streams/{id}/executions/{eid}``).

Clients poll these far more often than they call anything else, and FastAPI's part of such a
request — matching it against the routes, solving the route's parameters, its exception and exit
stack layers — cost more than the cached read itself (bench/RESULTS.md, "Cheap requests"). As
``AppendLane`` does for the one-row append, this middleware recognises the paths itself and calls
the very endpoint functions the routes declare, rendering errors as every route does. Anything
else — another method, a path it does not know, ids the route would refuse as not 64-bit ids —
goes on to the app untouched and is answered by the route as before. The routes stay declared:
the API description and every other client see no difference (``test_read_lane.py`` holds the
lane to them).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from datagrove import metrics
from datagrove.api.errors import render_error
from datagrove.api.health import health
from datagrove.api.params import MAX_ID
from datagrove.api.public_v1.datasets import get_dataset
from datagrove.api.public_v1.streams import get_execution, list_streams
from datagrove.api.security import current_actor
from datagrove.errors import DatagroveError

Answer = Callable[[Request, tuple[str, ...]], Awaitable[Response]]


@dataclass(frozen=True)
class Lane:
    path: re.Pattern[str]
    #: The template of the route it stands for (``/metrics`` labels, and the test's check).
    route: str
    endpoint: Callable[..., Awaitable[Response]]
    answer: Answer
    #: Its groups are path ids (digits): one over 2**63-1 is left to the route, whose 400 names it.
    ids: bool = False

    def takes(self, path: str) -> re.Match[str] | None:
        match = self.path.fullmatch(path)
        if match is None or (self.ids and any(int(g) > MAX_ID for g in match.groups())):
            return None
        return match


async def _health(request: Request, groups: tuple[str, ...]) -> Response:
    return await health()


async def _dataset(request: Request, groups: tuple[str, ...]) -> Response:
    return await get_dataset(groups[0], request)


async def _streams(request: Request, groups: tuple[str, ...]) -> Response:
    return await list_streams(request)


async def _execution(request: Request, groups: tuple[str, ...]) -> Response:
    # The route declares the caller with Depends: solved before the endpoint runs, as here.
    actor = await current_actor(request)
    return await get_execution(int(groups[0]), int(groups[1]), request, actor)


LANES = (
    Lane(re.compile(r"/health"), "/health", health, _health),
    Lane(re.compile(r"/v1/datasets/([^/]+)"), "/v1/datasets/{dataset_id}", get_dataset, _dataset),
    Lane(re.compile(r"/v1/streams/?"), "/v1/streams", list_streams, _streams),
    Lane(
        re.compile(r"/v1/streams/(\d{1,19})/executions/(\d{1,19})/?"),
        "/v1/streams/{stream_id}/executions/{execution_id}",
        get_execution,
        _execution,
        ids=True,
    ),
)


class ReadLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        for lane in LANES:
            match = lane.takes(path)
            if match is not None:
                break
        else:
            await self.app(scope, receive, send)
            return
        scope[metrics.ROUTE_KEY] = lane.route
        request = Request(scope, receive)
        try:
            response = await lane.answer(request, match.groups())
        except DatagroveError as exc:
            response = render_error(request, exc)
        await response(scope, receive, send)
