"""How a connector stream reads and writes on ``/api/data/v1/streams`` (product-api.md §2.1, §2.2).

A request is a connector stream's when it names a ``dataProvider.key`` and its ``transport.type`` is
not ``API`` (Domo's R package creates push streams with ``{"type": "API"}`` and a provider ``r``).
``account`` is ``{"id": ...}`` (or ``accountId``; Domo's ids are numbers, sent as numbers or
strings); ``accounts[0].accountId`` is read too, as BT's clients PUT it back.
"""

from __future__ import annotations

from typing import Any

from datagrove.api.params import is_digits
from datagrove.domain import ConnectorSettings
from datagrove.errors import BadRequest, NotFound
from datagrove.services.connector_streams import (
    ConnectorSpec,
    ConnectorStreamService,
    parse_configuration,
    transport_of,
)

PUSH_TRANSPORT = "API"


def connector_spec(
    body: dict[str, Any], *, existing: ConnectorSettings | None = None
) -> ConnectorSpec | None:
    """The connector settings a create or PUT body gives; None for a push stream's body (and for a
    PUT to a push stream that does not make it a connector stream)."""
    provider = body.get("dataProvider")
    if provider is not None and not isinstance(provider, dict):
        raise BadRequest("dataProvider must be an object with a 'key'")
    key = provider.get("key") if provider else None
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise BadRequest("dataProvider.key must be a non-empty string")
    transport = transport_of(body.get("transport"))
    transport_type = (transport or {}).get("type", "").upper()
    names_connector = key is not None and key != "api" and transport_type != PUSH_TRANSPORT
    if existing is None and not names_connector:
        if transport_type not in ("", PUSH_TRANSPORT) and key is None:
            raise BadRequest('a connector stream needs dataProvider.key, e.g. {"key": "postgresql"}')
        return None
    account_given, account_id = _account(body)
    return ConnectorSpec(
        provider_key=key if names_connector else None,
        transport=transport if names_connector else None,
        configuration=parse_configuration(body["configuration"]) if "configuration" in body else None,
        account_id=account_id,
        account_given=account_given,
        schedule=body.get("advancedScheduleJson"),
        schedule_given="advancedScheduleJson" in body,
    )


def _account(body: dict[str, Any]) -> tuple[bool, int | None]:
    if "account" in body:
        value = body["account"]
        if value is None:
            return True, None
        if not isinstance(value, dict):
            raise BadRequest('account must be an object like {"id": 12}')
        raw = value.get("id", value.get("accountId"))
    elif isinstance(body.get("accounts"), list) and body["accounts"]:
        first = body["accounts"][0]
        raw = first.get("accountId", first.get("id")) if isinstance(first, dict) else None
    else:
        return False, None
    if raw is None:
        return True, None
    if isinstance(raw, bool) or not is_digits(str(raw).strip()):
        raise NotFound(f"account {raw!r} does not exist")
    return True, int(str(raw).strip())


def connector_fields(
    stream_id: int, settings: ConnectorSettings, service: ConnectorStreamService
) -> dict[str, Any]:
    """The keys of the full Stream object that describe its connector (secrets masked)."""
    account = None
    if settings.account_id is not None:
        account = {"id": settings.account_id, "accountId": settings.account_id, "valid": True}
    return {
        "transport": {
            "type": settings.transport.get("type", "CONNECTOR"),
            "description": settings.transport.get(
                "description", f"com.datagrove.connector.{settings.provider_key}"
            ),
            "version": settings.transport.get("version", "1"),
        },
        "dataProvider": {
            "id": None,
            "key": settings.provider_key,
            "name": service.provider_name(settings.provider_key),
            "type": "STANDARD",
        },
        "account": account,
        "accounts": []
        if settings.account_id is None
        else [{"accountId": settings.account_id, "streamId": stream_id, "metadata": {}}],
        "advancedScheduleJson": settings.schedule,
        "scheduleState": "MANUAL" if service.is_manual(settings) else "ACTIVE",
        "configuration": [
            {
                "streamId": stream_id,
                "category": item.category,
                "name": item.name,
                "type": item.type,
                "value": item.value,
            }
            for item in service.visible_configuration(settings)
        ],
    }
