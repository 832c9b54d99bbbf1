"""Connector runs: a connector's rows pulled off the request path and committed exactly once.

A run is an execution (``services/streams.py``) that a server process fills itself::

    queued (ACTIVE, no runner) --claim--> running (ACTIVE) --commit--> COMMITTING --> SUCCESS
                                              |                                '--> ERROR
                                              |--source error / died--> ERROR (+ a RETRY run if transient)
                                              |--server shut down--> ERROR, code shutdown (+ a RETRY run)
                                              '--abort--> ABORTED

Starting a run only queues it (the request answers at once); ``connector_runs`` worker threads per
process claim queued runs in the catalog, so any node may run any run and none runs one twice. A run
reads its connector's batches one at a time into staged Parquet files (memory: one batch), records
them as the execution's parts and commits them with the stream commit (one Iceberg transaction with
the execution's commit key): APPEND and REPLACE are atomic and a failed or aborted run changes
nothing. The state the connector leaves (an incremental cursor) is stored on the execution and is in
force only once that execution is SUCCESS, so a crash between the commit and the state never makes
the next run read rows twice.

A running run's runner refreshes its heartbeat; a run whose heartbeat stopped (its process died) is
marked ERROR by any node and retried, like a transient source failure (up to ``connector_retries``
times, waiting ``connector_retry_backoff_seconds`` doubled each time).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pyarrow as pa

from datagrove import metrics
from datagrove.catalog.connector_runs import ConnectorCatalog
from datagrove.catalog.repository import Catalog, utcnow
from datagrove.catalog.streams import StreamCatalog
from datagrove.connectors.arrow_schema import columns_for, conform
from datagrove.connectors.base import RunContext, SourceError, TransientSourceError
from datagrove.connectors.network import NetworkPolicy
from datagrove.connectors.registry import connector as find_connector
from datagrove.disk_space import translate_disk_full
from datagrove.domain import (
    Actor,
    Execution,
    ExecutionState,
    Part,
    PartState,
    RunType,
    UpdateMethod,
)
from datagrove.errors import BadRequest, Conflict, DatagroveError, InsufficientStorage
from datagrove.services.access import Action
from datagrove.services.accounts import AccountService
from datagrove.services.audit import AuditLog
from datagrove.services.connector_streams import ConnectorStreamService
from datagrove.services.datasets import PROCESS, DatasetService, _alive
from datagrove.services.query import QueryService
from datagrove.services.streams import StreamService
from datagrove.tables.batch_files import BatchFiles
from datagrove.tables.store import TableStore

log = logging.getLogger("datagrove.runs")

#: A run whose heartbeat is older than this many heartbeat intervals is taken for dead.
SILENT_HEARTBEATS = 4


@dataclass(frozen=True)
class RunSettings:
    workers: int
    batch_rows: int
    file_rows: int
    retries: int
    retry_backoff_seconds: float
    heartbeat_seconds: float
    sql_timeout_seconds: float
    max_download_bytes: int = 10 * 1024**3


class RunAborted(Exception):
    """The run was aborted (or taken for dead) while it read its source."""


class ConnectorRuns:
    def __init__(
        self,
        *,
        catalog: Catalog,
        streams: StreamCatalog,
        runs: ConnectorCatalog,
        stream_service: StreamService,
        connector_streams: ConnectorStreamService,
        datasets: DatasetService,
        accounts: AccountService,
        query: QueryService,
        store: TableStore,
        network: NetworkPolicy,
        audit: AuditLog,
        settings: RunSettings,
    ) -> None:
        self._catalog = catalog
        self._streams = streams
        self._runs = runs
        self._stream_service = stream_service
        self._connector_streams = connector_streams
        self._datasets = datasets
        self._accounts = accounts
        self._query = query
        self._store = store
        self._network = network
        self._audit = audit
        self._settings = settings
        self.runner = f"{PROCESS}:{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._running: dict[int, threading.Event] = {}  # execution id -> its cancel flag

    # --- starting and stopping runs -------------------------------------------------------------

    def start(self, *, actor: Actor, stream_id: int, abort_running: bool = False) -> Execution:
        """Queue a manual run of a connector stream; a worker (here or on another node) starts it."""
        view = self._stream_service.get(actor=actor, stream_id=stream_id, action=Action.EDIT)
        if view.stream.connector is None:
            raise BadRequest(f"stream {stream_id} is not a connector stream")
        if abort_running:
            self._stream_service.abort_current(actor=actor, stream_id=stream_id)
        run = self._runs.queue_run(
            stream_id=stream_id,
            update_method=view.stream.update_method,
            run_type=RunType.MANUAL,
            started_by=actor.user.id,
        )
        self._audit.record(
            actor, "stream.run", object_type="STREAM", object_id=stream_id, detail=f"execution {run.id}"
        )
        self._wake.set()
        return run

    def wake(self) -> None:
        """A run was queued (e.g. by the scheduler): look for it now rather than at the next poll."""
        self._wake.set()

    def start_workers(self) -> None:
        self.recover_dead_runs(at_start=True)
        for index in range(max(1, self._settings.workers)):
            thread = threading.Thread(target=self._work, name=f"connector-run-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        beat = threading.Thread(target=self._beat, name="connector-heartbeat", daemon=True)
        beat.start()
        self._threads.append(beat)

    def stop_workers(self) -> None:
        """Cancel this process's runs (each ends ERROR with code ``shutdown`` and is queued to run
        again, here or on another node) and stop the workers. A run already committing finishes
        (waited for up to 10 s; past that its commit resumes like any interrupted commit)."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            for cancelled in self._running.values():
                cancelled.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                run = self._runs.claim_run(self.runner, now=utcnow())
            except Exception:
                log.exception("could not look for queued runs; will try again")
                run = None
            if run is None:
                self._wake.wait(self._settings.heartbeat_seconds)
                self._wake.clear()
                continue
            self._execute(run)

    def _beat(self) -> None:
        """Refresh the heartbeat of this process's runs; cancel those aborted meanwhile; and take
        over the runs of processes that died."""
        while not self._stop.wait(self._settings.heartbeat_seconds):
            try:
                with self._lock:
                    running = dict(self._running)
                alive = self._runs.heartbeat(self.runner, list(running))
                for execution_id, cancelled in running.items():
                    if execution_id not in alive:
                        cancelled.set()
                self.recover_dead_runs()
            except Exception:
                log.exception("connector heartbeat failed; will try again")

    # --- one run --------------------------------------------------------------------------------

    def _execute(self, run: Execution) -> None:
        cancelled = threading.Event()
        with self._lock:
            self._running[run.id] = cancelled
            if self._stop.is_set():  # claimed just as the server began to stop
                cancelled.set()
        started = time.monotonic()
        try:
            with translate_disk_full("the connector run"):
                rows = self._pull_and_commit(run, cancelled)
            metrics.job_ended("connector_run", "success")
            log.info(
                "connector run succeeded",
                extra={
                    "fields": {
                        "execution": run.id,
                        "stream": run.stream_id,
                        "rows": rows,
                        "seconds": round(time.monotonic() - started, 3),
                    }
                },
            )
        except RunAborted:
            if self._stop.is_set():
                # Cancelled by this server's shutdown, not by a person: ERROR, and run again later.
                self._fail(
                    run,
                    "the server shut down while the run was reading its source; it runs again later",
                    category="FRAMEWORK",
                    code="shutdown",
                    retry=True,
                    counted=False,
                )
            else:
                self._store.discard_execution(run.id)
                metrics.job_ended("connector_run", "aborted")
                log.info("connector run aborted", extra={"fields": {"execution": run.id}})
        except InsufficientStorage as exc:
            self._fail(run, exc.message, category="FRAMEWORK", code=exc.code, retry=True)
        except TransientSourceError as exc:
            self._fail(run, exc.message, category="CONNECTOR", code=exc.code, retry=True)
        except SourceError as exc:
            self._fail(run, exc.message, category="CONNECTOR", code=exc.code, retry=False)
        except DatagroveError as exc:
            self._fail(run, exc.message, category="USER" if exc.status < 500 else "FRAMEWORK", code=exc.code)
        except Exception:
            # Log the traceback here; the run shows a message that cannot carry a credential.
            log.exception("connector run failed", extra={"fields": {"execution": run.id}})
            self._fail(
                run, "internal error while running the connector", category="FRAMEWORK", code="internal"
            )
        finally:
            with self._lock:
                self._running.pop(run.id, None)

    def _pull_and_commit(self, run: Execution, cancelled: threading.Event) -> int:
        stream = self._streams.get_stream(run.stream_id)
        settings = stream.connector
        if settings is None:
            raise BadRequest(f"stream {stream.id} is no longer a connector stream")
        dataset = self._catalog.get_dataset(stream.dataset_id)
        run_as = Actor(
            user=self._catalog.get_user(settings.run_as_id), scopes=None, credential=f"connector:{stream.id}"
        )
        connector = find_connector(settings.provider_key)
        credentials: dict[str, str] = {}
        account_type = None
        if settings.account_id is not None:
            account = self._accounts.usable(user_id=run_as.user.id, account_id=settings.account_id)
            credentials, account_type = account.credentials, account.type
        context = RunContext(
            config=self._connector_streams.open_configuration(stream.id, settings),
            credentials=credentials,
            account_type=account_type,
            columns=dataset.columns,
            state=self._runs.last_state(stream.id),
            update_method=run.update_method,
            network=self._network,
            cancelled=cancelled.is_set,
            batch_rows=self._settings.batch_rows,
            datasets=_DatasetReader(self._query, run_as, self._settings.sql_timeout_seconds),
            max_download_bytes=self._settings.max_download_bytes,
        )
        files: BatchFiles | None = None
        try:
            source = connector.open(context)  # some sources read here (a file connector downloads)
        except Exception as exc:
            if cancelled.is_set():
                raise RunAborted from exc  # whatever the source raised once cancelled is the cancel
            raise
        try:
            columns = list(dataset.columns) or columns_for(source.schema)
            files = BatchFiles(
                self._store.execution_dir(run.id),
                columns,
                rows_per_file=self._settings.file_rows,
                parquet=self._store.parquet_layout,
                # A dataset without columns yet gets the source's: its table numbers them 1..n.
                field_ids=self._store.field_ids(dataset.id, columns) if dataset.columns else None,
            )
            for batch in source.batches():
                if cancelled.is_set():
                    raise RunAborted
                files.write(conform(batch, columns))
            written = files.finish()
            state = source.state()
        except BaseException as exc:
            if files is not None:
                files.discard()
            if cancelled.is_set() and isinstance(exc, Exception):
                raise RunAborted from exc
            raise
        finally:
            source.close()
        if cancelled.is_set():
            raise RunAborted
        for number, written_file in enumerate(written):
            try:
                self._streams.record_part(
                    Part(
                        run.id,
                        number,
                        PartState.READY,
                        self._store.stage_file(run.id, written_file.path),
                        written_file.rows,
                        written_file.bytes,
                        "",
                        None,
                    )
                )
            except Conflict:
                raise RunAborted from None  # no longer ACTIVE: aborted meanwhile
        self._runs.set_run_state(run.id, state)
        if not dataset.columns:
            # The first run gives the dataset the source's schema, just before its rows land.
            self._datasets.update(actor=run_as, dataset_id=dataset.id, changes={"columns": columns})
        committed = self._stream_service.commit(actor=run_as, stream_id=stream.id, execution_id=run.id)
        return committed.rows

    def _fail(
        self,
        run: Execution,
        message: str,
        *,
        category: str,
        code: str,
        retry: bool = False,
        counted: bool = True,
    ) -> None:
        ended = self._streams.transition(
            run.id,
            from_states=(ExecutionState.ACTIVE,),
            to=ExecutionState.ERROR,
            error=message,
            error_category=category,
            error_code=code,
        )
        self._store.discard_execution(run.id)
        metrics.job_ended("connector_run", "failure")
        log.warning(
            "connector run failed",
            extra={"fields": {"execution": run.id, "category": category, "code": code, "error": message}},
        )
        if ended and retry:
            self._retry(run, counted=counted)

    def _retry(self, run: Execution, *, counted: bool = True) -> None:
        """Queue the run again after a backoff. An uncounted retry (the server shut down under it:
        nothing was wrong with the source) does not use up one of the ``connector_retries``."""
        if counted and run.retry_count >= self._settings.retries:
            return
        delay = self._settings.retry_backoff_seconds * (2**run.retry_count if counted else 1)
        try:
            retry = self._runs.queue_run(
                stream_id=run.stream_id,
                update_method=run.update_method,
                run_type=RunType.RETRY,
                started_by=run.started_by,
                retry_of=run.id,
                retry_count=run.retry_count + (1 if counted else 0),
                not_before=utcnow() + timedelta(seconds=delay),
                scheduled_for=run.scheduled_for,
            )
        except Conflict:
            return  # another run started meanwhile: it will read what this one would have
        log.info(
            "connector run retry queued",
            extra={"fields": {"execution": retry.id, "retry_of": run.id, "in_seconds": delay}},
        )

    # --- runs whose process died ----------------------------------------------------------------

    def recover_dead_runs(self, *, at_start: bool = False) -> int:
        """Mark failed (and retry) the runs whose runner died: at start, those of this host's dead
        processes at once; any time, those whose heartbeat went silent. Safe on every node."""
        silent_since = utcnow() - timedelta(seconds=self._settings.heartbeat_seconds * SILENT_HEARTBEATS)
        dead = self._runs.claimed_runs(silent_since=silent_since)
        if at_start:
            dead += [(run, runner) for run, runner in self._runs.claimed_runs() if _dead_here(runner)]
        recovered = 0
        for run, runner in {run.id: (run, runner) for run, runner in dead}.values():
            if runner == self.runner:
                continue  # our own: the heartbeat thread may just be late
            if self._streams.transition(
                run.id,
                from_states=(ExecutionState.ACTIVE,),
                to=ExecutionState.ERROR,
                error="the server process running it stopped before it ended",
                error_category="FRAMEWORK",
                error_code="runner_died",
            ):
                recovered += 1
                self._store.discard_execution(run.id)
                log.warning("connector run taken for dead", extra={"fields": {"execution": run.id}})
                self._retry(run)
        if recovered:
            self._wake.set()
        return recovered


class _DatasetReader:
    """dataset-sql's view of the datasets: SQL over them as the stream's run-as user."""

    def __init__(self, query: QueryService, actor: Actor, timeout_seconds: float) -> None:
        self._query = query
        self._actor = actor
        self._timeout = timeout_seconds

    def open_batches(self, sql: str) -> pa.RecordBatchReader:
        return self._query.open_batches(actor=self._actor, sql=sql, timeout_seconds=self._timeout)


def _dead_here(runner: str) -> bool:
    host, _, rest = runner.partition(":")
    pid = rest.partition(":")[0]
    return host == PROCESS.partition(":")[0] and pid.isdigit() and not _alive(int(pid))


__all__ = ["ConnectorRuns", "RunSettings", "UpdateMethod"]
