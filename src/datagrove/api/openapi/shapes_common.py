"""Shapes both API families share: the error envelope, the health answer, an empty object.

Documentation only (see ``spec.py``): the routes render with ``api/render.py`` and friends.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Error(BaseModel):
    """Every error, of every route (``api/errors.py``): Domo's shape plus a stable ``code``."""

    model_config = ConfigDict(title="Error")

    status: int = Field(description="The HTTP status, repeated.")
    statusReason: str = Field(description="The status's reason phrase, e.g. Bad Request.")
    code: str = Field(
        description="Stable machine-readable code: bad_request, invalid_csv, invalid_sql, "
        "query_limit_exceeded, unauthorized, forbidden, not_found, conflict, dataset_deleted, "
        "version_gone, payload_too_large, unsupported_media_type, too_many_requests, http_error, "
        "internal_error, not_ready."
    )
    message: str = Field(description="What was wrong, for a person; never a stack trace or a secret.")
    toe: str = Field(description="The request's trace id, also in the server's log line for it.")
    details: dict[str, Any] | None = Field(
        None,
        description="Structured detail when there is some, e.g. line, column and value of a bad CSV "
        "value; for a 429, the limit reached (the setting's name) and retryAfterSeconds.",
    )


class Health(BaseModel):
    status: str = Field(description='Always "ok": the server answers and its catalog is reachable.')


class EmptyObject(BaseModel):
    """``{}``: what Domo answers for an action with nothing to say."""

    model_config = ConfigDict(title="EmptyObject", extra="forbid")


class Column(BaseModel):
    type: str = Field(description="STRING, LONG, DOUBLE, DECIMAL, DATE, DATETIME or BOOLEAN.")
    name: str


class Schema(BaseModel):
    columns: list[Column]


ERROR_EXAMPLES: dict[int, dict[str, Any]] = {
    400: {"code": "bad_request", "message": "limit must be an integer, not 'ten'"},
    401: {
        "code": "unauthorized",
        "message": "authentication required: send 'Authorization: bearer <token>' or X-DOMO-Developer-Token",
    },
    403: {"code": "forbidden", "message": "you may not edit dataset 7d3c..."},
    404: {"code": "not_found", "message": "dataset 7d3c... does not exist"},
    409: {"code": "conflict", "message": "execution 3 is not active (it is SUCCESS)"},
    410: {"code": "dataset_deleted", "message": "the dataset of stream 12 was deleted"},
    413: {"code": "payload_too_large", "message": "the upload is larger than the limit of 10737418240 bytes"},
    503: {
        "code": "not_ready",
        "message": "not ready: storage: the tables' directory /srv/datagrove/warehouse is missing",
        "details": {"checks": {"catalog": "ok", "storage": "the tables' directory ... is missing"}},
    },
    429: {
        "code": "too_many_requests",
        "message": "too many queries at once: you are running 4 (limit query_slots_per_user: 4); "
        "try again in 2 seconds",
        "details": {"limit": "query_slots_per_user", "retryAfterSeconds": 2},
    },
    507: {
        "code": "insufficient_storage",
        "message": "the commit failed: the server's disk is full; nothing was written — try again once space is freed",
    },
}
