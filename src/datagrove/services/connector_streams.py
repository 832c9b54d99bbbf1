"""Connector streams: what a stream pulls from, with which account, and when.

A stream created with a ``dataProvider`` (and a transport other than ``API``) is a connector stream:
its ``configuration`` items, ``account`` and ``advancedScheduleJson`` are checked when they are set
(unknown connector, missing item, an account the caller may not use or of the wrong type, a private
address, a schedule that does not parse: 400/404 at once), then stored. The values of secret items
are sealed (``crypto.SecretBox``) and only ever shown as ``MASK``; a client that PUTs back the masked
value it read keeps the stored secret.

An item is secret when its connector declares it so, when its ``type`` says so (``password``,
``secret``) or when its name looks like one (password, secret, token, api key, credential).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from datagrove.catalog.connector_runs import ConnectorCatalog
from datagrove.connectors.base import ConnectorInfo, secret_names
from datagrove.connectors.network import NetworkPolicy
from datagrove.connectors.registry import connector as find_connector
from datagrove.connectors.registry import connectors as registered_connectors
from datagrove.crypto import SecretBox
from datagrove.domain import Actor, ConfigEntry, ConnectorSettings, UpdateMethod
from datagrove.errors import BadRequest
from datagrove.services.accounts import AccountService
from datagrove.services.audit import AuditLog
from datagrove.services.schedules import parse_schedule
from datagrove.services.streams import StreamService, StreamView
from datagrove.tables.types import Column

MASK = "********"
SECRET_TYPES = frozenset({"password", "secret", "encrypted", "credential"})
SECRET_NAME = re.compile(
    r"pass(word|wd)?$|secret|token|api[_-]?key|credential|private[_-]?key", re.IGNORECASE
)
CATEGORIES = frozenset({"STREAM", "METADATA", "CONNECTOR_STATE", "CONNECTOR_RESULT"})


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class ConnectorSpec:
    """A connector stream's settings as a request gives them (``None``: not given)."""

    provider_key: str | None = None
    transport: dict[str, str] | None = None
    configuration: list[ConfigEntry] | None = None
    account_id: int | None = None
    account_given: bool = False
    schedule: Any = None
    schedule_given: bool = False


class ConnectorStreamService:
    def __init__(
        self,
        *,
        streams: StreamService,
        runs: ConnectorCatalog,
        accounts: AccountService,
        box: SecretBox,
        network: NetworkPolicy,
        clock: Clock,
        audit: AuditLog,
    ) -> None:
        self._streams = streams
        self._runs = runs
        self._accounts = accounts
        self._box = box
        self._network = network
        self._clock = clock
        self._audit = audit

    def create(
        self,
        *,
        actor: Actor,
        name: str,
        description: str,
        columns: list[Column],
        update_method: UpdateMethod,
        spec: ConnectorSpec,
    ) -> StreamView:
        """Check everything that can be known now, then create the dataset and its stream."""
        assert spec.provider_key is not None
        settings = self._checked(actor, spec, current=None, stream_id=None)
        view = self._streams.create(
            actor=actor, name=name, description=description, columns=columns, update_method=update_method
        )
        return self._store(actor, view, settings)

    def update(self, *, actor: Actor, view: StreamView, spec: ConnectorSpec) -> StreamView:
        """Merge ``spec`` into the stream's settings (a push stream given a ``dataProvider`` becomes a
        connector stream); the caller has checked that the actor may edit the stream."""
        current = view.stream.connector
        if current is None and spec.provider_key is None:
            return view
        settings = self._checked(actor, spec, current=current, stream_id=view.stream.id)
        return self._store(actor, view, settings)

    def providers(self) -> list[ConnectorInfo]:
        """Every registered connector, with the configuration items it takes (for a form)."""
        return registered_connectors()

    def list_connector_streams(self, *, actor: Actor, limit: int, offset: int) -> list[StreamView]:
        """The connector streams among the first ``limit`` streams (from ``offset``) the actor may
        see; push streams are left out, so a page may hold fewer."""
        views = self._streams.list_streams(actor=actor, limit=limit, offset=offset)
        return [view for view in views if view.stream.connector is not None]

    def provider_name(self, provider_key: str) -> str:
        try:
            return str(find_connector(provider_key).name)
        except BadRequest:
            return provider_key  # its package was uninstalled since: still show the stream

    def is_manual(self, settings: ConnectorSettings) -> bool:
        return parse_schedule(settings.schedule).manual

    def visible_configuration(self, settings: ConnectorSettings) -> list[ConfigEntry]:
        """The configuration as any reader sees it: secret values masked."""
        return [replace(item, value=MASK) if item.secret else item for item in settings.configuration]

    def open_configuration(self, stream_id: int, settings: ConnectorSettings) -> dict[str, str]:
        """name -> value with secrets decrypted: for the run engine only, never for a response."""
        return {
            item.name: self._box.open(item.value, context=_context(stream_id, item.name))
            if item.secret
            else item.value
            for item in settings.configuration
        }

    # --- internals ------------------------------------------------------------------------------

    def _checked(
        self, actor: Actor, spec: ConnectorSpec, *, current: ConnectorSettings | None, stream_id: int | None
    ) -> _Checked:
        provider_key = spec.provider_key or (current.provider_key if current else None)
        if not provider_key:
            raise BadRequest("dataProvider.key is required for a connector stream")
        connector = find_connector(provider_key)
        declared_secret = secret_names(connector.config_items)
        # Merge: items given replace stored ones by name; a masked value keeps the stored secret.
        stored = {item.name: item for item in current.configuration} if current else {}
        plain = self.open_configuration(stream_id, current) if current and stream_id is not None else {}
        items: dict[str, ConfigEntry] = dict(stored)
        values: dict[str, str] = dict(plain)
        for item in spec.configuration or []:
            secret = item.secret or item.name in declared_secret or _looks_secret(item)
            if secret and item.value == MASK and item.name in stored:
                items[item.name] = replace(stored[item.name], type=item.type, category=item.category)
                continue
            items[item.name] = replace(item, secret=secret)
            values[item.name] = item.value
        account_id = spec.account_id if spec.account_given else (current.account_id if current else None)
        account_type: str | None = None
        credentials: dict[str, str] = {}
        if account_id is not None:
            account = self._accounts.usable(user_id=actor.user.id, account_id=account_id)
            account_type, credentials = account.type, account.credentials
            allowed = connector.account_types
            if not allowed:
                raise BadRequest(f"connector {provider_key!r} takes no account")
            if account.type not in allowed:
                raise BadRequest(
                    f"account {account_id} is a {account.type!r} account; connector {provider_key!r} "
                    f"takes {', '.join(sorted(allowed))} accounts"
                )
        connector.check(_with_credentials(values, credentials), network=self._network)
        schedule = parse_schedule(
            spec.schedule if spec.schedule_given else (current.schedule if current else None)
        )
        run_as = (
            actor.user.id if (spec.account_given or spec.configuration or not current) else current.run_as_id
        )
        return _Checked(
            provider_key=provider_key,
            transport=spec.transport or (current.transport if current else _transport(provider_key)),
            items=list(items.values()),
            plain=values,
            account_id=account_id,
            account_type=account_type,
            schedule=schedule.to_json(),
            next_run_at=schedule.next_after(self._clock.now()),
            run_as_id=run_as,
        )

    def _store(self, actor: Actor, view: StreamView, checked: _Checked) -> StreamView:
        stream_id = view.stream.id
        sealed = tuple(
            replace(
                item, value=self._box.seal(checked.plain[item.name], context=_context(stream_id, item.name))
            )
            if item.secret and item.name in checked.plain
            else item
            for item in checked.items
        )
        settings = ConnectorSettings(
            provider_key=checked.provider_key,
            transport=checked.transport,
            configuration=sealed,
            account_id=checked.account_id,
            run_as_id=checked.run_as_id,
            schedule=checked.schedule,
            next_run_at=checked.next_run_at,
        )
        self._runs.set_connector(stream_id, settings)
        self._audit.record(
            actor,
            "stream.configure",
            object_type="STREAM",
            object_id=stream_id,
            detail=f"connector {checked.provider_key}, schedule {checked.schedule}",
        )
        return StreamView(replace(view.stream, connector=settings), view.dataset)


@dataclass(frozen=True)
class _Checked:
    provider_key: str
    transport: dict[str, str]
    items: list[ConfigEntry]
    plain: dict[str, str]
    account_id: int | None
    account_type: str | None
    schedule: str
    next_run_at: datetime | None
    run_as_id: int


def parse_configuration(value: Any) -> list[ConfigEntry]:
    """``configuration`` as clients send it: a list of ``{name|key, value, type?, category?}``.
    Values are strings in Domo; a number or an object is kept as its JSON text."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest("configuration must be a list of {name, value} items")
    items: list[ConfigEntry] = []
    for index, raw in enumerate(value):
        if not isinstance(raw, dict):
            raise BadRequest(f"configuration[{index}] must be an object with 'name' (or 'key') and 'value'")
        name = raw.get("name", raw.get("key"))
        if not isinstance(name, str) or not name.strip():
            raise BadRequest(f"configuration[{index}] needs a non-empty 'name' (or 'key')")
        item_value = raw.get("value")
        if item_value is None:
            text = ""
        elif isinstance(item_value, str):
            text = item_value
        else:
            text = json.dumps(item_value)
        kind = raw.get("type") or "string"
        category = raw.get("category") or "METADATA"
        if not isinstance(kind, str) or not isinstance(category, str):
            raise BadRequest(f"configuration[{index}]: 'type' and 'category' are strings")
        if category.upper() not in CATEGORIES:
            raise BadRequest(
                f"configuration[{index}].category {category!r} is not one of {', '.join(sorted(CATEGORIES))}"
            )
        items.append(ConfigEntry(name=name.strip(), value=text, type=kind, category=category.upper()))
    return items


def _looks_secret(item: ConfigEntry) -> bool:
    return item.type.lower() in SECRET_TYPES or bool(SECRET_NAME.search(item.name))


def _context(stream_id: int | None, name: str) -> str:
    return f"stream:{stream_id}:config:{name}"


def _transport(provider_key: str) -> dict[str, str]:
    return {"type": "CONNECTOR", "description": f"com.datagrove.connector.{provider_key}", "version": "1"}


def _with_credentials(config: Mapping[str, str], credentials: Mapping[str, str]) -> dict[str, str]:
    return {**config, **credentials}


def transport_of(value: Any) -> dict[str, str] | None:
    """``transport`` of a request: an object of strings (``version`` may come as a number)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest('transport must be an object like {"type": "CONNECTOR", "version": "1"}')
    return {str(k): "" if v is None else str(v) for k, v in value.items()}
