"""What the operations endpoints (``api/operations.py``: ``/metrics``, ``/ready``) take and give."""

from __future__ import annotations

from pydantic import BaseModel, Field

from datagrove.api.openapi.spec import Content, Op, Reply, ok

METRICS_TEXT = {
    "type": "string",
    "description": "Prometheus text exposition format 0.0.4 (docs/operations-metrics.md lists the metrics).",
}
METRICS_EXAMPLE = (
    "# HELP datagrove_http_requests_total HTTP requests answered, by method, route template and status.\n"
    "# TYPE datagrove_http_requests_total counter\n"
    'datagrove_http_requests_total{method="GET",route="/v1/datasets/{dataset_id}",status="200"} 42.0\n'
)


class Ready(BaseModel):
    status: str = Field(description='"ready".')
    checks: dict[str, str] = Field(description='Each check ("catalog", "storage") and "ok".')


OPS_OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", "/metrics"): Op(
        "Metrics in Prometheus format",
        "Health",
        "metrics",
        (
            Reply(
                200,
                "Every metric of this server process.",
                (Content(METRICS_TEXT, METRICS_EXAMPLE, "text/plain"),),
            ),
        ),
        "No user credential: readable from the addresses in `DATAGROVE_METRICS_ALLOW` (loopback by "
        "default), or from anywhere with `Authorization: Bearer <DATAGROVE_METRICS_TOKEN>`. 401 for a "
        "missing or wrong metrics token when one is configured, else 403.",
        auth="none",
        errors=(401, 403),
    ),
    ("GET", "/ready"): Op(
        "Readiness",
        "Health",
        "ready",
        ok(
            Ready,
            {"status": "ready", "checks": {"catalog": "ok", "storage": "ok"}},
            "The catalog answers and the storage can be used.",
        ),
        "For load balancers and orchestrators: 503 (`not_ready`, `details.checks` naming what failed) "
        "while the catalog or the table storage cannot be used. `/health` stays liveness.",
        auth="none",
        errors=(503,),
    ),
}
