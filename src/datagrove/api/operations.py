"""``GET /metrics`` (Prometheus text, for the addresses or token the settings allow) and
``GET /ready`` (readiness: catalog and storage usable) for the people and machines running a server.

Neither needs a user's credential: ``/metrics`` has its own access rule (``MetricsAccess``), and
``/ready`` says no more than whether the server can serve, as ``/health`` does."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from datagrove.api.errors import error_response
from datagrove.api.responses import json_response

router = APIRouter()


@router.get("/metrics")
def metrics(request: Request) -> Response:
    body, content_type = request.app.state.services.metrics_access.scrape(
        address=request.client.host if request.client else None,
        authorization=request.headers.get("authorization"),
    )
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


@router.get("/ready")
def ready(request: Request) -> Response:
    report = request.app.state.services.readiness.check()
    if report.ready:
        return json_response({"status": "ready", "checks": report.checks})
    failed = "; ".join(f"{name}: {report.checks[name]}" for name in report.failed)
    return error_response(request, 503, "not_ready", f"not ready: {failed}", {"checks": report.checks})
