"""``GET /v1/audit``: the activity log, newest first (public-api-clients.md §13). Admins only,
OAuth scope ``audit``.

Query: ``start`` and ``end`` (epoch milliseconds, inclusive), ``user`` (a user id), ``limit``
(default 50, at most 1000) and ``offset``. Each entry is Domo's 14-key object; ``time`` is epoch
milliseconds, ``additionalComment`` the detail (a refused login names the client id there, never
a secret), and ``eventText`` says what happened and, when it did not succeed, how it ended.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from datagrove.api.params import int_param, is_digits
from datagrove.api.responses import json_response
from datagrove.api.security import current_actor
from datagrove.domain import Actor, AuditEntry
from datagrove.errors import BadRequest

router = APIRouter(prefix="/v1/audit")

EVENTS = {
    "login": "Logged in",
    "dataset.create": "Created DataSet",
    "dataset.update": "Updated DataSet",
    "dataset.delete": "Deleted DataSet",
    "dataset.import": "Imported data into DataSet",
    "dataset.export": "Exported DataSet",
    "dataset.table_load": "Loaded DataSet as an Iceberg table",
    "dataset.query": "Queried DataSet",
    "dataset.restore": "Restored a version of DataSet",
    "dataset.share": "Shared DataSet",
    "dataset.revoke": "Revoked access to DataSet",
    "dataset.permission": "Changed access to DataSet",
    "token.create": "Generated access token",
    "token.revoke": "Revoked access token",
    "account.create": "Created account",
    "account.update": "Updated account",
    "account.delete": "Deleted account",
    "account.share": "Shared account",
}
OUTCOMES = {"failure": "failed", "denied": "denied"}


def event_text(entry: AuditEntry) -> str:
    text = EVENTS.get(entry.action, entry.action)
    outcome = OUTCOMES.get(entry.outcome)
    return f"{text} ({outcome})" if outcome else text


def audit_entry(entry: AuditEntry) -> dict[str, Any]:
    return {
        "userName": entry.actor_name or "",
        "userId": entry.actor_id,
        "userType": "USER",
        "actorId": entry.actor_id,
        "actorType": "USER",
        "objectName": entry.object_name or "",
        "objectId": entry.object_id or "",
        "objectType": entry.object_type or "",
        "additionalComment": entry.detail or "",
        "time": int(entry.time.timestamp() * 1000),
        "eventText": event_text(entry),
        "device": "API",
        "browserDetails": "",
        "ipAddress": entry.ip_address or "",
    }


def _time(query: Any, name: str) -> datetime | None:
    if query.get(name) in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int_param(query, name, 0) / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise BadRequest(f"{name} must be a time in epoch milliseconds") from None


@router.get("")
def list_audit(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    query = request.query_params
    user = query.get("user") or None
    if user is not None and not (is_digits(user) and len(user) <= 18):
        raise BadRequest(f"user must be a user id, not {user!r}")
    entries = request.app.state.services.audit.entries(
        actor=actor,
        start=_time(query, "start"),
        end=_time(query, "end"),
        user_id=None if user is None else int(user),
        limit=int_param(query, "limit", 50),
        offset=min(int_param(query, "offset", 0), 2**63 - 1),
    )
    return json_response([audit_entry(e) for e in entries])
