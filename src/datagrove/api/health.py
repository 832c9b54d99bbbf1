"""``GET /health``: unauthenticated liveness and readiness for load balancers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from datagrove.api.responses import json_response

router = APIRouter()


@router.get("/health")
def health(request: Request) -> Response:
    request.app.state.services.catalog.ping()
    return json_response({"status": "ok"})
