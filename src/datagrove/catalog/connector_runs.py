"""``ConnectorCatalog``: connector streams' settings, the run queue and schedule occurrences.

A connector run is an execution row with ``connector_run`` set. It is *queued* while ACTIVE with no
``runner``; a server process *claims* it with one conditional UPDATE (``... WHERE runner IS NULL``),
so two processes (or two nodes on one PostgreSQL catalog) never both run it. While it runs, its
runner refreshes ``heartbeat_at``; a run whose heartbeat stops is taken for dead by any node. A
partial unique index (migration 0009) lets a stream hold one queued or running run at most, so
"run now" on two nodes at once queues one run, and the other request is told which.

A schedule occurrence starts exactly once because claiming it is an INSERT on the primary key
``(stream_id, due_at)``, made in the same transaction that queues its run and moves the stream's
``next_run_at`` on: the one node whose INSERT lands does all three, every other node's fails.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.catalog.repository import _aware, utcnow
from datagrove.catalog.streams import _execution
from datagrove.domain import ConnectorSettings, Execution, ExecutionState, RunType, UpdateMethod
from datagrove.errors import Conflict, NotFound

RUNNING = (ExecutionState.ACTIVE.value, ExecutionState.COMMITTING.value)
#: Tries at queueing a run when inserts race: each lost race is answered by naming the winner.
QUEUE_ATTEMPTS = 3


class ConnectorCatalog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # --- a stream's connector settings ----------------------------------------------------------

    def set_connector(self, stream_id: int, settings: ConnectorSettings) -> None:
        with self.engine.begin() as db:
            done = db.execute(
                t.streams.update()
                .where(t.streams.c.id == stream_id)
                .values(
                    provider_key=settings.provider_key,
                    transport=json.dumps(settings.transport),
                    configuration=json.dumps([asdict(item) for item in settings.configuration]),
                    account_id=settings.account_id,
                    run_as_id=settings.run_as_id,
                    schedule=settings.schedule,
                    next_run_at=settings.next_run_at,
                    modified_at=utcnow(),
                )
            )
        if done.rowcount != 1:
            raise NotFound(f"stream {stream_id} does not exist")

    # --- the run queue --------------------------------------------------------------------------

    def queue_run(
        self,
        *,
        stream_id: int,
        update_method: UpdateMethod,
        run_type: RunType,
        started_by: int | None,
        retry_of: int | None = None,
        retry_count: int = 0,
        not_before: datetime | None = None,
        scheduled_for: datetime | None = None,
    ) -> Execution:
        """A new queued run. A stream runs one connector run at a time: while another is queued or
        running this is 409 naming it. The check is a courtesy (it names the run); the guarantee is
        the partial unique index on the stream's running runs, which fails the second of two inserts
        racing from two nodes."""
        for _ in range(QUEUE_ATTEMPTS):
            try:
                with self.engine.begin() as db:
                    running = _running_run(db, stream_id)
                    if running is None:
                        execution_id = _insert_run(
                            db,
                            stream_id=stream_id,
                            update_method=update_method,
                            run_type=run_type,
                            started_by=started_by,
                            retry_of=retry_of,
                            retry_count=retry_count,
                            not_before=not_before,
                            scheduled_for=scheduled_for,
                        )
            except sa.exc.IntegrityError:
                continue  # another node queued one between the check and the insert: look again
            if running is not None:
                raise Conflict(
                    f"stream {stream_id} already has a run in progress (execution {running}); abort it "
                    "or wait for it to end",
                    execution_id=running,
                )
            return self.execution(execution_id)
        raise Conflict(f"stream {stream_id} already has a run in progress; abort it or wait for it to end")

    def claim_run(self, runner: str, *, now: datetime) -> Execution | None:
        """The oldest queued run that may start now, claimed for ``runner``; None when there is none."""
        queued = (
            sa.select(t.executions.c.id)
            .where(
                t.executions.c.connector_run.is_(True),
                t.executions.c.state == ExecutionState.ACTIVE.value,
                t.executions.c.runner.is_(None),
                sa.or_(t.executions.c.not_before.is_(None), t.executions.c.not_before <= now),
            )
            .order_by(t.executions.c.id)
            .limit(5)
        )
        with self.engine.connect() as db:
            candidates = list(db.execute(queued).scalars())
        for execution_id in candidates:
            with self.engine.begin() as db:
                won = db.execute(
                    t.executions.update()
                    .where(
                        t.executions.c.id == execution_id,
                        t.executions.c.state == ExecutionState.ACTIVE.value,
                        t.executions.c.runner.is_(None),
                    )
                    .values(runner=runner, heartbeat_at=now, modified_at=now)
                ).rowcount
            if won == 1:
                return self.execution(execution_id)
        return None

    def heartbeat(self, runner: str, execution_ids: list[int]) -> set[int]:
        """Record that ``runner`` is alive for its runs; returns the ids still ACTIVE (or
        COMMITTING) and still its own — a run missing from the answer was aborted."""
        if not execution_ids:
            return set()
        now = utcnow()
        with self.engine.begin() as db:
            db.execute(
                t.executions.update()
                .where(
                    t.executions.c.id.in_(execution_ids),
                    t.executions.c.runner == runner,
                    t.executions.c.state.in_(RUNNING),
                )
                .values(heartbeat_at=now)
            )
            alive = db.execute(
                sa.select(t.executions.c.id).where(
                    t.executions.c.id.in_(execution_ids),
                    t.executions.c.runner == runner,
                    t.executions.c.state.in_(RUNNING),
                )
            ).scalars()
            return set(alive)

    def claimed_runs(self, *, silent_since: datetime | None = None) -> list[tuple[Execution, str]]:
        """Claimed runs still ACTIVE with their runner; with ``silent_since`` only those whose last
        heartbeat is older."""
        query = sa.select(t.executions).where(
            t.executions.c.connector_run.is_(True),
            t.executions.c.state == ExecutionState.ACTIVE.value,
            t.executions.c.runner.is_not(None),
        )
        if silent_since is not None:
            query = query.where(t.executions.c.heartbeat_at < silent_since)
        with self.engine.connect() as db:
            return [(_execution(row), row.runner) for row in db.execute(query)]

    def set_run_state(self, execution_id: int, state: Mapping[str, str]) -> None:
        """What the run leaves for the next one; in force once the run is SUCCESS."""
        with self.engine.begin() as db:
            db.execute(
                t.executions.update()
                .where(t.executions.c.id == execution_id)
                .values(connector_state=json.dumps(dict(state)))
            )

    def last_state(self, stream_id: int) -> dict[str, str]:
        """The state of the stream's latest successful run that left one ({} if none did)."""
        with self.engine.connect() as db:
            value = db.execute(
                sa.select(t.executions.c.connector_state)
                .where(
                    t.executions.c.stream_id == stream_id,
                    t.executions.c.state == ExecutionState.SUCCESS.value,
                    t.executions.c.connector_state.is_not(None),
                )
                .order_by(t.executions.c.id.desc())
                .limit(1)
            ).scalar()
        return json.loads(value) if value else {}

    def execution(self, execution_id: int) -> Execution:
        with self.engine.connect() as db:
            row = db.execute(sa.select(t.executions).where(t.executions.c.id == execution_id)).first()
        if row is None:
            raise NotFound(f"execution {execution_id} does not exist")
        return _execution(row)

    # --- schedules ------------------------------------------------------------------------------

    def due_streams(self, now: datetime) -> list[tuple[int, datetime]]:
        """Live connector streams whose next occurrence is due: (stream id, occurrence)."""
        query = (
            sa.select(t.streams.c.id, t.streams.c.next_run_at)
            .join(t.datasets, t.datasets.c.id == t.streams.c.dataset_id)
            .where(t.streams.c.next_run_at.is_not(None), t.streams.c.next_run_at <= now)
            .order_by(t.streams.c.next_run_at)
        )
        with self.engine.connect() as db:
            return [(row.id, _aware(row.next_run_at)) for row in db.execute(query)]

    def claim_occurrence(
        self,
        *,
        stream_id: int,
        due_at: datetime,
        next_run_at: datetime | None,
        claimed_by: str,
        update_method: UpdateMethod,
    ) -> Execution | None | bool:
        """Claim the occurrence ``due_at`` of the stream: in one transaction, record it, move the
        stream's ``next_run_at`` on and queue its run. False if another node claimed it first (or a
        manual run was queued at the same moment: the occurrence stays due and the next tick finds
        that run in progress); None if claimed but skipped because a run of the stream is still in
        progress; else the run."""
        now = utcnow()
        try:
            with self.engine.begin() as db:
                db.execute(
                    t.schedule_occurrences.insert().values(
                        stream_id=stream_id, due_at=due_at, claimed_at=now, claimed_by=claimed_by
                    )
                )
                db.execute(
                    t.streams.update()
                    .where(t.streams.c.id == stream_id, t.streams.c.next_run_at == due_at)
                    .values(next_run_at=next_run_at)
                )
                if _running_run(db, stream_id) is not None:
                    return None
                execution_id = _insert_run(
                    db,
                    stream_id=stream_id,
                    update_method=update_method,
                    run_type=RunType.AUTOMATED,
                    started_by=None,
                    scheduled_for=due_at,
                )
                db.execute(
                    t.schedule_occurrences.update()
                    .where(
                        t.schedule_occurrences.c.stream_id == stream_id,
                        t.schedule_occurrences.c.due_at == due_at,
                    )
                    .values(execution_id=execution_id)
                )
        except sa.exc.IntegrityError:
            return False
        return self.execution(execution_id)

    def occurrences(self, stream_id: int) -> list[tuple[datetime, int | None, str]]:
        """The stream's claimed occurrences, oldest first: (due at, execution id, claimed by)."""
        query = (
            sa.select(t.schedule_occurrences)
            .where(t.schedule_occurrences.c.stream_id == stream_id)
            .order_by(t.schedule_occurrences.c.due_at)
        )
        with self.engine.connect() as db:
            return [(_aware(r.due_at), r.execution_id, r.claimed_by) for r in db.execute(query)]


def _running_run(db: sa.Connection, stream_id: int) -> int | None:
    return db.execute(
        sa.select(t.executions.c.id).where(
            t.executions.c.stream_id == stream_id,
            t.executions.c.connector_run.is_(True),
            t.executions.c.state.in_(RUNNING),
        )
    ).scalar()


def _insert_run(
    db: sa.Connection,
    *,
    stream_id: int,
    update_method: UpdateMethod,
    run_type: RunType,
    started_by: int | None,
    retry_of: int | None = None,
    retry_count: int = 0,
    not_before: datetime | None = None,
    scheduled_for: datetime | None = None,
) -> int:
    now = utcnow()
    return int(
        db.execute(
            t.executions.insert().values(
                stream_id=stream_id,
                state=ExecutionState.ACTIVE.value,
                update_method=update_method.value,
                created_at=now,
                modified_at=now,
                connector_run=True,
                run_type=run_type.value,
                started_by=started_by,
                retry_of=retry_of,
                retry_count=retry_count,
                not_before=not_before,
                scheduled_for=scheduled_for,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
    )
