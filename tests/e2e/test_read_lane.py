"""The polled reads' lane (``api/read_lane.py``) stands for its routes exactly: it takes only the
paths FastAPI's routing would have sent to the same endpoint, and whatever the route would refuse
goes on to the route, which answers as it always did.

What the lane's answers say (bodies, 401/403/404, permissions, metrics labels) is held by the tests
of those endpoints, which now pass through it: test_datasets, test_streams, test_permission_matrix,
test_metrics.
"""

from __future__ import annotations

import tempfile

import pytest
from starlette.routing import Match

from datagrove.api.read_lane import LANES
from tests.support.server import RunningServer

# Paths the lanes take, and their neighbours that they must leave to the routes.
SAMPLES = [
    "/health",
    "/v1/datasets/3f0e7c1a-0000-4000-8000-000000000001",
    "/v1/datasets/query",
    "/v1/datasets/abc/data",
    "/v1/datasets/abc/policies",
    "/v1/datasets/",
    "/v1/streams",
    "/v1/streams/",
    "/v1/streams/search",
    "/v1/streams/12",
    "/v1/streams/12/executions",
    "/v1/streams/12/executions/34",
    "/v1/streams/12/executions/34/",
    "/v1/streams/12/executions/abort",
    "/v1/streams/12/executions/34/part/1",
    "/v1/streams/x/executions/34",
]


def _get_routes_in_order():  # type: ignore[no-untyped-def]
    from datagrove.app import create_app
    from datagrove.settings import load

    app = create_app(load(data_dir=tempfile.mkdtemp()))
    for included in app.routes:
        router = getattr(included, "original_router", None)
        yield from router.routes if router else [included]


def _routed(routes, path: str):  # type: ignore[no-untyped-def]
    """The route FastAPI's routing picks for ``GET path`` (the first full match), or None."""
    scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


def test_each_lane_takes_only_what_its_route_would_serve():
    routes = list(_get_routes_in_order())
    taken = set()
    for path in SAMPLES:
        lane = next((lane for lane in LANES if lane.takes(path)), None)
        if lane is None:
            continue
        route = _routed(routes, path)
        assert route is not None, f"{path}: the lane takes it, no route serves it"
        assert route.endpoint is lane.endpoint, f"{path}: routed to {route.endpoint.__name__}"
        assert route.path.rstrip("/") == lane.route
        taken.add(lane.route)
    assert taken == {lane.route for lane in LANES}, "a lane without a sample path"


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/v1/streams/x/executions/1", "stream_id"),
        (f"/v1/streams/1/executions/{2**64}", "execution_id"),
        (f"/v1/streams/{2**63}/executions/1", "stream_id"),  # 19 digits, one over the largest id
    ],
)
def test_ids_the_route_refuses_are_refused_by_the_route(server: RunningServer, path: str, named: str):
    with server.client() as client:
        response = client.get(path)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert named in response.json()["message"]
