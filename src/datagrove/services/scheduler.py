"""The scheduler: connector streams run on their ``advancedScheduleJson``, each occurrence once.

Every server process looks for due streams every ``scheduler_interval_seconds``. A stream's next
occurrence is kept in the catalog (``next_run_at``, set when its schedule is set); claiming an
occurrence records it under a unique key, moves ``next_run_at`` to the schedule's next time after
*now* and queues the run, all in one transaction (``ConnectorCatalog.claim_occurrence``), so with
any number of processes on one catalog each occurrence starts exactly once.

Occurrences missed while no server ran collapse into one run when the server is back (no burst of
catch-up runs); an occurrence due while the stream's previous run is still going is skipped.

``SchedulerClock`` is the real clock unless ``scheduler_clock_file`` names a file holding an
ISO-8601 time: tests and rehearsals move time by writing that file, without sleeping.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from datagrove import metrics
from datagrove.catalog.connector_runs import ConnectorCatalog
from datagrove.catalog.streams import StreamCatalog
from datagrove.domain import Execution
from datagrove.errors import DatagroveError
from datagrove.services.connector_runs import ConnectorRuns
from datagrove.services.datasets import PROCESS
from datagrove.services.schedules import parse_schedule

log = logging.getLogger("datagrove.scheduler")


class SchedulerClock:
    def __init__(self, clock_file: Path | None = None) -> None:
        self._file = clock_file

    def now(self) -> datetime:
        if self._file is None:
            return datetime.now(UTC)
        try:
            text = self._file.read_text().strip()
            moment = datetime.fromisoformat(text)
        except (OSError, ValueError):
            log.warning("the scheduler clock file cannot be read; using the real clock")
            return datetime.now(UTC)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Scheduler:
    def __init__(
        self,
        *,
        runs: ConnectorCatalog,
        streams: StreamCatalog,
        engine: ConnectorRuns,
        clock: SchedulerClock,
        interval_seconds: float,
    ) -> None:
        self._runs = runs
        self._streams = streams
        self._engine = engine
        self._clock = clock
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.name = f"{PROCESS}:scheduler"

    def tick(self) -> list[Execution]:
        """Claim every occurrence due now; returns the runs this process queued."""
        now = self._clock.now()
        queued: list[Execution] = []
        for stream_id, due_at in self._runs.due_streams(now):
            try:
                stream = self._streams.get_stream(stream_id)
                if stream.connector is None:
                    continue
                schedule = parse_schedule(stream.connector.schedule)
                claimed = self._runs.claim_occurrence(
                    stream_id=stream_id,
                    due_at=due_at,
                    next_run_at=schedule.next_after(now),
                    claimed_by=self.name,
                    update_method=stream.update_method,
                )
            except DatagroveError as exc:
                log.warning(
                    "could not schedule a stream",
                    extra={"fields": {"stream": stream_id, "error": exc.message}},
                )
                continue
            if isinstance(claimed, Execution):
                queued.append(claimed)
                log.info(
                    "scheduled run queued",
                    extra={
                        "fields": {"stream": stream_id, "execution": claimed.id, "due": due_at.isoformat()}
                    },
                )
            elif claimed is None:
                log.info(
                    "scheduled run skipped: the previous run is still going",
                    extra={"fields": {"stream": stream_id, "due": due_at.isoformat()}},
                )
        if queued:
            self._engine.wake()
        return queued

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.tick()
            except Exception:
                metrics.job_ended("scheduler", "failure")
                log.exception("scheduler tick failed; will try again")
            else:
                metrics.job_ended("scheduler", "success")
