"""``GET /health``: unauthenticated liveness for load balancers and orchestrators.

Constant and async: it answers as long as the server's event loop does, without a thread or a
catalog round trip, so that probing it costs next to nothing. Whether the catalog and storage are
reachable is readiness, a different question with its own endpoint.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

router = APIRouter()

_OK = b'{"status":"ok"}'


@router.get("/health")
async def health() -> Response:
    return Response(_OK, media_type="application/json;charset=UTF-8")
