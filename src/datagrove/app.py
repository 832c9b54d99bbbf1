"""The composition root: settings -> catalog, table store, services -> the ASGI app.

Nothing else builds these objects, and nothing reads the environment at import time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datagrove import __version__, metrics
from datagrove.api import errors
from datagrove.api.append_lane import AppendLane
from datagrove.api.health import router as health_router
from datagrove.api.iceberg_rest import ROUTERS as ICEBERG_REST_ROUTERS
from datagrove.api.openapi import pages as openapi_pages
from datagrove.api.operations import router as operations_router
from datagrove.api.product.accesstokens import router as product_tokens_router
from datagrove.api.product.accounts import router as product_accounts_router
from datagrove.api.product.datasources import router as product_datasources_router
from datagrove.api.product.datasources_v2 import router as product_datasources_v2_router
from datagrove.api.product.query import router as product_query_router
from datagrove.api.product.streams import router as product_streams_router
from datagrove.api.product.uploads import router as product_uploads_router
from datagrove.api.public_v1.accounts import router as accounts_router
from datagrove.api.public_v1.audit import router as audit_router
from datagrove.api.public_v1.datasets import router as datasets_router
from datagrove.api.public_v1.groups import router as groups_router
from datagrove.api.public_v1.oauth import router as oauth_router
from datagrove.api.public_v1.policies import router as policies_router
from datagrove.api.public_v1.streams import router as streams_router
from datagrove.api.public_v1.users import router as users_router
from datagrove.api.public_v1.versions import router as versions_router
from datagrove.api.read_lane import ReadLane
from datagrove.catalog.accounts import AccountCatalog
from datagrove.catalog.appends import AppendCatalog
from datagrove.catalog.audit import AuditCatalog
from datagrove.catalog.auth_failures import AuthFailureCatalog
from datagrove.catalog.connector_runs import ConnectorCatalog
from datagrove.catalog.database import make_engine, migrate, pool_use
from datagrove.catalog.maintenance import MaintenanceCatalog
from datagrove.catalog.people import PeopleCatalog
from datagrove.catalog.permissions import PermissionCatalog
from datagrove.catalog.policies import PolicyCatalog
from datagrove.catalog.repository import Catalog
from datagrove.catalog.streams import StreamCatalog
from datagrove.catalog.web_sessions import WebSessionCatalog
from datagrove.connectors.network import NetworkPolicy
from datagrove.crypto import SecretBox
from datagrove.services.access import AccessControl
from datagrove.services.accounts import AccountService
from datagrove.services.appends import AppendService, FoldSettings
from datagrove.services.audit import AuditLog
from datagrove.services.auth import Authenticator
from datagrove.services.connector_runs import ConnectorRuns, RunSettings
from datagrove.services.connector_streams import ConnectorStreamService
from datagrove.services.datasets import DatasetService
from datagrove.services.failed_attempts import ApiAttemptLimits, FailedAttempts, LimitedCredentials
from datagrove.services.maintenance import MaintenanceService, MaintenanceSettings
from datagrove.services.operations import MetricsAccess, Readiness
from datagrove.services.passwords import PasswordService
from datagrove.services.people import PeopleService
from datagrove.services.policies import PolicyService
from datagrove.services.query import QueryService
from datagrove.services.scheduler import Scheduler, SchedulerClock
from datagrove.services.sharing import SharingService
from datagrove.services.streams import StreamService
from datagrove.services.table_catalog import TableCatalog
from datagrove.services.uploads import UploadService
from datagrove.services.versions import VersionService
from datagrove.services.web_sessions import SessionSettings, WebSessions
from datagrove.services.work_slots import SlotLimit, Work, WorkSlots
from datagrove.settings import Settings
from datagrove.storage_setup import build_storage, s3_options
from datagrove.tables.distributed import DistributedEngine
from datagrove.tables.file_cache import FileCache
from datagrove.tables.parquet_layout import ParquetLayout
from datagrove.tables.reader_access import ReaderAccess, VendingPolicy
from datagrove.tables.sandbox import QueryLimits
from datagrove.tables.sandbox_pool import SpillDirectories
from datagrove.tables.sandbox_pool import keep_idle as keep_idle_sandboxes
from datagrove.tables.storage import Storage
from datagrove.tables.store import TableStore
from datagrove.tables.warmup import warm_up
from datagrove.web import install as install_web

log = logging.getLogger("datagrove.http")


@dataclass(frozen=True)
class Services:
    settings: Settings
    catalog: Catalog
    store: TableStore
    auth: Authenticator
    access: AccessControl
    permissions: PermissionCatalog
    audit: AuditLog
    policies: PolicyService
    datasets: DatasetService
    streams: StreamService
    appends: AppendService
    query: QueryService
    people: PeopleService
    sharing: SharingService
    uploads: UploadService
    secret_box: SecretBox
    accounts: AccountService
    connector_streams: ConnectorStreamService
    connector_runs: ConnectorRuns
    scheduler: Scheduler
    versions: VersionService
    maintenance: MaintenanceService
    passwords: PasswordService
    web_sessions: WebSessions
    metrics_access: MetricsAccess
    readiness: Readiness
    credentials: LimitedCredentials
    work_slots: WorkSlots
    table_catalog: TableCatalog


def build_services(settings: Settings) -> Services:
    """Open (and migrate) the catalog, open the table store and wire the services together."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(
        settings.resolved_catalog_url,
        pool_size=settings.catalog_pool_size,
        max_overflow=settings.catalog_pool_overflow,
    )
    migrate(engine)
    catalog = Catalog(engine)
    storage, file_cache = _storage(settings)
    store = TableStore(
        catalog_url=settings.resolved_catalog_url,
        warehouse_dir=settings.warehouse_dir,
        staging_dir=settings.staging_dir,
        threads=settings.import_threads,
        parquet=ParquetLayout(codec=settings.parquet_codec),
        storage=storage,
        file_cache=file_cache,
    )
    signing_key = settings.signing_key or catalog.server_key(
        "jwt_signing_key", default=secrets.token_urlsafe(48)
    )
    stream_catalog = StreamCatalog(engine)
    ingest_slots = threading.BoundedSemaphore(settings.resolved_ingest_concurrency)
    permissions = PermissionCatalog(engine)
    access = AccessControl(permissions=permissions)
    audit = AuditLog(catalog=AuditCatalog(engine), access=access)
    auth = Authenticator(
        catalog=catalog,
        signing_key=signing_key,
        token_lifetime=settings.token_lifetime_seconds,
        customer=settings.customer,
        access=access,
        audit=audit,
    )
    policies = PolicyService(catalog=catalog, policies=PolicyCatalog(engine), access=access, audit=audit)
    # Its own engine: a one-row append is answered only once it is durable (see make_engine).
    append_catalog = AppendCatalog(
        make_engine(
            settings.resolved_catalog_url,
            synced_commits=True,
            pool_size=settings.catalog_pool_size,
            max_overflow=settings.catalog_pool_overflow,
        )
    )
    datasets = DatasetService(
        catalog=catalog,
        streams=stream_catalog,
        appends=append_catalog,
        store=store,
        access=access,
        permissions=permissions,
        policies=policies,
        audit=audit,
        ingest_threads=settings.import_threads,
        ingest_slots=ingest_slots,
        commit_claim_seconds=settings.commit_claim_seconds,
        min_free_disk_bytes=settings.min_free_disk_bytes,
        maintenance=MaintenanceCatalog(engine),
    )
    streams = StreamService(
        catalog=catalog,
        streams=stream_catalog,
        store=store,
        datasets=datasets,
        access=access,
        audit=audit,
        ingest_threads=settings.resolved_part_threads,
        ingest_slots=ingest_slots,
        idle_timeout_seconds=settings.execution_idle_timeout_seconds,
        commit_resume_after_seconds=settings.commit_resume_after_seconds,
    )
    appends = AppendService(
        appends=append_catalog,
        catalog=catalog,
        auth=auth,
        datasets=datasets,
        store=store,
        fold=FoldSettings(
            rows=settings.append_fold_rows,
            size=settings.append_fold_bytes,
            seconds=settings.append_fold_seconds,
            interval=settings.append_fold_interval_seconds,
        ),
    )
    limits = QueryLimits(
        timeout_seconds=settings.query_timeout_seconds,
        max_rows=settings.query_max_rows,
        threads=settings.query_threads,
        memory_limit=settings.query_memory_limit,
        spill_root=str(settings.query_spill_dir),
        spill_limit=settings.query_spill_limit,
    )
    settings.query_spill_dir.mkdir(exist_ok=True)
    SpillDirectories.remove_stale(settings.query_spill_dir)
    keep_idle_sandboxes(settings.query_sandbox_pool)
    work_slots = work_slots_from(settings)
    query = QueryService(
        datasets=datasets,
        store=store,
        policies=policies,
        audit=audit,
        limits=limits,
        slots=work_slots,
        distributed=(
            DistributedEngine(address=settings.distributed_ray_address)
            if settings.distributed_ray_address
            else None
        ),
        distributed_min_rows=settings.distributed_min_rows,
    )
    # The key sealing credentials: a setting, or a 0600 file in the data directory (never the catalog).
    box = SecretBox.from_setting_or_file(settings.secret_key, settings.data_dir)
    network = NetworkPolicy.from_settings(settings)
    connector_catalog = ConnectorCatalog(engine)
    clock = SchedulerClock(settings.scheduler_clock_file)
    accounts = AccountService(
        catalog=catalog,
        accounts=AccountCatalog(engine),
        access=access,
        audit=audit,
        box=box,
        groups=PeopleCatalog(engine),
    )
    connector_streams = ConnectorStreamService(
        streams=streams,
        runs=connector_catalog,
        accounts=accounts,
        box=box,
        network=network,
        clock=clock,
        audit=audit,
    )
    connector_runs = ConnectorRuns(
        catalog=catalog,
        streams=stream_catalog,
        runs=connector_catalog,
        stream_service=streams,
        connector_streams=connector_streams,
        datasets=datasets,
        accounts=accounts,
        query=query,
        store=store,
        network=network,
        audit=audit,
        settings=RunSettings(
            workers=settings.connector_runs,
            batch_rows=settings.connector_batch_rows,
            file_rows=settings.connector_file_rows,
            retries=settings.connector_retries,
            retry_backoff_seconds=settings.connector_retry_backoff_seconds,
            heartbeat_seconds=settings.connector_heartbeat_seconds,
            sql_timeout_seconds=settings.connector_sql_timeout_seconds,
            max_download_bytes=settings.connector_max_download_bytes,
        ),
    )
    scheduler = Scheduler(
        runs=connector_catalog,
        streams=stream_catalog,
        engine=connector_runs,
        clock=clock,
        interval_seconds=settings.scheduler_interval_seconds,
    )
    maintenance = MaintenanceService(
        maintenance=MaintenanceCatalog(engine),
        catalog=catalog,
        streams=stream_catalog,
        datasets=datasets,
        store=store,
        settings=maintenance_settings(settings),
        audit=audit,
    )
    _watch_for_metrics(engine, append_catalog, appends)
    table_catalog = TableCatalog(
        datasets=datasets,
        access=access,
        store=store,
        appends=appends,
        reader_access=_reader_access(settings),
        audit=audit,
    )
    web_session_catalog = WebSessionCatalog(engine)
    passwords = PasswordService(sessions=web_session_catalog, access=access, audit=audit)
    attempts = FailedAttempts(
        failures=AuthFailureCatalog(engine),
        audit=audit,
        keep_seconds=max(settings.sign_in_window_seconds, settings.auth_failure_window_seconds),
    )
    return Services(
        settings=settings,
        catalog=catalog,
        store=store,
        auth=auth,
        access=access,
        permissions=permissions,
        audit=audit,
        policies=policies,
        datasets=datasets,
        streams=streams,
        appends=appends,
        query=query,
        people=PeopleService(catalog=catalog, people=PeopleCatalog(engine), access=access, audit=audit),
        sharing=SharingService(
            catalog=catalog, permissions=permissions, access=access, audit=audit, groups=PeopleCatalog(engine)
        ),
        uploads=UploadService(datasets=datasets, streams=streams, stream_catalog=stream_catalog),
        secret_box=box,
        accounts=accounts,
        connector_streams=connector_streams,
        connector_runs=connector_runs,
        scheduler=scheduler,
        versions=VersionService(datasets=datasets, store=store, audit=audit),
        maintenance=maintenance,
        passwords=passwords,
        web_sessions=WebSessions(
            sessions=web_session_catalog,
            passwords=passwords,
            auth=auth,
            audit=audit,
            attempts=attempts,
            settings=SessionSettings(
                idle_seconds=settings.web_session_idle_seconds,
                max_seconds=settings.web_session_max_seconds,
                max_failures=settings.sign_in_max_failures,
                max_failures_per_address=settings.sign_in_max_failures_per_address,
                window_seconds=settings.sign_in_window_seconds,
            ),
        ),
        metrics_access=MetricsAccess(
            allow=settings.metrics_allow,
            token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
        ),
        readiness=Readiness(catalog=catalog, storage=storage),
        credentials=LimitedCredentials(
            auth=auth,
            attempts=attempts,
            limits=ApiAttemptLimits(
                per_client=settings.auth_max_failures_per_client,
                per_address=settings.auth_max_failures_per_address,
                window_seconds=settings.auth_failure_window_seconds,
            ),
        ),
        work_slots=work_slots,
        table_catalog=table_catalog,
    )


def work_slots_from(settings: Settings) -> WorkSlots:
    return WorkSlots(
        {
            Work.QUERY: SlotLimit(
                settings.query_slots_per_user, settings.query_slots, "query_slots_per_user", "query_slots"
            ),
            Work.UPLOAD: SlotLimit(
                settings.upload_slots_per_user, settings.upload_slots, "upload_slots_per_user", "upload_slots"
            ),
        },
        retry_after_seconds=settings.limit_retry_after_seconds,
    )


def _watch_for_metrics(engine: sa.Engine, append_catalog: AppendCatalog, appends: AppendService) -> None:
    """What ``/metrics`` reads when scraped: the catalog pools, the append buffer."""
    metrics.watch_pool("catalog", lambda: pool_use(engine))
    metrics.watch_pool("appends", lambda: pool_use(append_catalog.engine))
    metrics.watch_append_buffer(appends.buffer, appends.queued)


def maintenance_settings(settings: Settings) -> MaintenanceSettings:
    return MaintenanceSettings(
        interval_seconds=settings.maintenance_interval_seconds,
        keep_snapshots=settings.retention_min_snapshots,
        keep_days=settings.retention_days,
        grace_seconds=settings.resolved_maintenance_grace_seconds,
        orphan_min_age_seconds=settings.resolved_orphan_min_age_seconds,
        # A commit places its files and commits them within its claim.
        check_min_age_seconds=settings.commit_claim_seconds + 60,
        target_bytes=settings.compaction_target_bytes,
        min_small_files=settings.compaction_min_small_files,
        audit_retention_days=settings.audit_retention_days,
    )


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    services = services or build_services(settings)
    # redirect_slashes off: pydomo POSTs to /v1/streams/ and requests turns a redirected POST into a GET.
    app = FastAPI(
        title="Datagrove",
        version=__version__,
        redirect_slashes=False,
        lifespan=_lifespan(services),
        # FastAPI's OpenTelemetry hooks look up three providers on every request (~6% of the time of
        # a one-row append); Datagrove logs one structured line per request instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # FastAPI's own schema and docs pages are off: api/openapi serves the described document.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.services = services
    errors.install(app)
    # Requests are matched against routes in this order, one by one (~2 us each, twice over in
    # FastAPI's included routers): what clients poll most (a dataset's metadata, a stream's
    # executions) comes first. The one-row append is recognised before routing (AppendLane).
    # No two routers serve the same path.
    for router in (
        health_router,
        operations_router,
        datasets_router,
        streams_router,
        oauth_router,
        product_uploads_router,
        product_datasources_router,
        users_router,
        groups_router,
        policies_router,
        versions_router,
        audit_router,
        accounts_router,
        product_datasources_v2_router,
        product_query_router,
        product_streams_router,
        product_tokens_router,
        product_accounts_router,
    ):
        app.include_router(router)
    if settings.iceberg_rest:
        for router in ICEBERG_REST_ROUTERS:
            # Described by the protocol's own published document, not by ours (docs/iceberg-rest.md).
            app.include_router(router, include_in_schema=False)
    install_web(app)  # the pages for people: /, /ui/..., /static/... (after the API: matched last)
    if settings.api_docs:
        openapi_pages.install(app)
    app.add_middleware(AppendLane)
    app.add_middleware(ReadLane)  # outside the append lane: the polled reads pass one layer fewer
    app.add_middleware(RequestLog)  # added last: outermost, so the lane's requests are logged too
    return app


def _reader_access(settings: Settings) -> ReaderAccess:
    """What the Iceberg REST catalog tells readers about the files: nothing for the data directory,
    the store and (per the settings) credentials for a bucket."""
    policy = VendingPolicy(
        role_arn=settings.iceberg_s3_role_arn,
        sts_endpoint=settings.iceberg_s3_sts_endpoint,
        seconds=settings.iceberg_s3_credentials_seconds,
        server_credentials=settings.iceberg_s3_vend_server_credentials,
    )
    return ReaderAccess(s3_options(settings) if settings.storage_url else None, policy)


def _storage(settings: Settings) -> tuple[Storage, FileCache | None]:
    """The data directory, or the bucket of ``storage_url`` with a local cache for reads."""
    storage = build_storage(settings)
    if storage.is_local:
        return storage, None
    cache = FileCache(
        settings.resolved_file_cache_dir, max_bytes=settings.file_cache_bytes, fetch=storage.download
    )
    return storage, cache


def _lifespan(services: Services) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        reaper = threading.Thread(target=_reap_forever, args=(services, stop), name="reaper", daemon=True)
        reaper.start()
        threading.Thread(target=_warm_up, args=(services,), name="warm-up", daemon=True).start()
        services.store.clear_read_areas()
        services.appends.start()
        services.connector_runs.start_workers()
        services.scheduler.start()
        services.maintenance.start()
        try:
            yield
        finally:
            stop.set()
            services.maintenance.stop()
            services.scheduler.stop()
            services.connector_runs.stop_workers()
            services.appends.stop()

    return lifespan


def stop_background_work(services: Services) -> None:
    """At the start of a graceful shutdown: no new scheduled runs or maintenance, and the connector
    runs under way cancelled (each is queued to run again). The lifespan's end stops the rest."""
    services.scheduler.stop()
    services.connector_runs.stop_workers()
    services.maintenance.stop()


def _reap_forever(services: Services, stop: threading.Event) -> None:
    """Abort idle executions and reclaim their staging, at start and then every interval."""
    while not stop.is_set():
        try:
            aborted = services.streams.reap_idle()
            if aborted:
                log.info("reaped idle executions", extra={"fields": {"aborted": aborted}})
        except Exception:
            log.exception("reaper failed; will try again")
        stop.wait(services.settings.reaper_interval_seconds)


def _warm_up(services: Services) -> None:
    """Run the data path once in the background, so the first user request does not pay its setup."""
    started = time.monotonic()
    try:
        warm_up(services.settings.data_dir)
    except Exception:
        log.exception("warm-up failed; the first requests will be slower")
        return
    log.info("warmed up", extra={"fields": {"seconds": round(time.monotonic() - started, 3)}})


class RequestLog:
    """One structured log line per request; gives each request a trace id (``toe`` in errors)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        trace_id = os.urandom(8).hex().upper()
        scope.setdefault("state", {})["trace_id"] = trace_id
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            seconds = time.monotonic() - started
            metrics.request_served(scope, status, seconds)
            actor = scope["state"].get("actor")
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round(seconds * 1000, 1),
                        "actor": actor.user.id if actor else None,
                        "toe": trace_id,
                    }
                },
            )
