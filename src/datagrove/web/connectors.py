"""Connector streams, ``/ui/connectors``: the ones the user may see, creating one (provider, account,
configuration, schedule), running one now and its run history. The services are those of
``/api/data/v1/streams`` (``services/connector_streams.py``, ``services/connector_runs.py``), which
check the provider, the account, the network rules and the schedule."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from datagrove.api.params import PathId
from datagrove.domain import Actor, ConfigEntry, UpdateMethod
from datagrove.errors import BadRequest, DatagroveError
from datagrove.services.access import Action
from datagrove.services.connector_streams import ConnectorSpec
from datagrove.services.web_sessions import WebSession
from datagrove.web.render import page, redirect
from datagrove.web.session import csrf_checked_session, current_web_session

router = APIRouter(prefix="/ui/connectors", include_in_schema=False)

LISTED_STREAMS = 500
LISTED_ACCOUNTS = 500
HISTORY = 50


def _accounts(request: Request, actor: Actor) -> list[Any]:
    services = request.app.state.services
    if not services.access.decide(actor, Action.LIST_ACCOUNTS).allowed:
        return []
    return list(services.accounts.list_accounts(actor=actor, limit=LISTED_ACCOUNTS, offset=0, sort="name"))


def _list_page(
    request: Request,
    session: WebSession,
    *,
    form: dict[str, str] | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    services = request.app.state.services
    views = services.connector_streams.list_connector_streams(
        actor=session.actor, limit=LISTED_STREAMS, offset=0
    )
    return page(
        request,
        "connectors.html",
        session=session,
        title="Connectors",
        section="connectors",
        status=status,
        views=views,
        providers=services.connector_streams.providers(),
        provider_name=services.connector_streams.provider_name,
        accounts=_accounts(request, session.actor),
        may_create=services.access.decide(session.actor, Action.CREATE_DATASET).allowed,
        form=form or {},
        notice=request.query_params.get("notice", ""),
        error=error,
    )


@router.get("")
async def connectors_page(request: Request, session: WebSession = Depends(current_web_session)) -> Response:
    return await run_in_threadpool(_list_page, request, session)


def configuration(text: str) -> list[ConfigEntry]:
    """``name=value`` lines (blank lines skipped) as configuration items."""
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            raise BadRequest(f"configuration line {number}: write name=value, e.g. query=SELECT 1")
        items.append(ConfigEntry(name=name.strip(), value=value.strip()))
    return items


@router.post("")
async def create_connector(request: Request, session: WebSession = Depends(csrf_checked_session)) -> Response:
    form = {key: str(value) for key, value in (await request.form()).items() if key != "csrf_token"}
    services = request.app.state.services

    def create() -> Any:
        name = form.get("name", "").strip()
        if not name:
            raise BadRequest("name the dataset the connector fills")
        provider = form.get("provider", "")
        if not provider:
            raise BadRequest("choose a connector")
        account = form.get("account", "")
        if account and not account.isdigit():
            raise BadRequest("choose an account from the list")
        schedule = form.get("schedule", "").strip()
        spec = ConnectorSpec(
            provider_key=provider,
            transport={"type": "CONNECTOR"},
            configuration=configuration(form.get("configuration", "")),
            account_id=int(account) if account else None,
            account_given=bool(account),
            schedule=schedule or None,
            schedule_given=True,
        )
        return services.connector_streams.create(
            actor=session.actor,
            name=name,
            description=form.get("description", ""),
            columns=[],
            update_method=UpdateMethod(form.get("method") or UpdateMethod.REPLACE.value),
            spec=spec,
        )

    try:
        view = await run_in_threadpool(create)
    except (DatagroveError, ValueError) as exc:
        message = (
            exc.message if isinstance(exc, DatagroveError) else "update method must be REPLACE or APPEND"
        )
        status = exc.status if isinstance(exc, DatagroveError) else 400
        return await run_in_threadpool(_list_page, request, session, form=form, error=message, status=status)
    return redirect(f"/ui/connectors/{view.stream.id}?notice=created")


def _stream_page(request: Request, session: WebSession, stream_id: int) -> Response:
    services = request.app.state.services
    view = services.streams.get(actor=session.actor, stream_id=stream_id)
    if view.stream.connector is None:
        raise BadRequest(f"stream {stream_id} is not a connector stream; its dataset is filled by uploads")
    runs = services.streams.list_executions(actor=session.actor, stream_id=stream_id, limit=HISTORY, offset=0)
    settings = view.stream.connector
    return page(
        request,
        "connector.html",
        session=session,
        title=view.dataset.name,
        section="connectors",
        view=view,
        settings=settings,
        provider=services.connector_streams.provider_name(settings.provider_key),
        configuration=services.connector_streams.visible_configuration(settings),
        manual=services.connector_streams.is_manual(settings),
        runs=sorted(runs, key=lambda run: run.id, reverse=True),
        may_run=services.access.decide(session.actor, Action.EDIT, view.dataset).allowed,
        notice=request.query_params.get("notice", ""),
    )


@router.get("/{stream_id}")
async def connector_page(
    stream_id: PathId, request: Request, session: WebSession = Depends(current_web_session)
) -> Response:
    return await run_in_threadpool(_stream_page, request, session, stream_id)


@router.post("/{stream_id}/run")
async def run_now(
    stream_id: PathId, request: Request, session: WebSession = Depends(csrf_checked_session)
) -> Response:
    run = await run_in_threadpool(
        request.app.state.services.connector_runs.start, actor=session.actor, stream_id=stream_id
    )
    return redirect(f"/ui/connectors/{stream_id}?notice=run-{run.id}")
