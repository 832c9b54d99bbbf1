"""``StreamCatalog``: streams, executions and parts in the catalog database.

Execution state changes are single conditional UPDATEs (``... WHERE state = 'ACTIVE'``), so two
requests or two nodes racing on one execution cannot both win a transition.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.catalog.read_cache import VersionedCache
from datagrove.catalog.repository import _aware, utcnow
from datagrove.catalog.versions import ACCESS, DATASETS, EXECUTIONS
from datagrove.catalog.visibility import visible_datasets
from datagrove.domain import (
    ConfigEntry,
    ConnectorSettings,
    DeletedDataset,
    Execution,
    ExecutionState,
    Part,
    PartState,
    RunType,
    Stream,
    UpdateMethod,
)
from datagrove.errors import Conflict, NotFound

#: What a connector stream without a schedule stores and shows (Domo's default).
MANUAL_SCHEDULE = '{"type":"MANUAL","timezone":"UTC"}'


class StreamCatalog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # What clients poll: a stream, a page of streams, an execution's state. Kept in memory for
        # one catalog version (catalog/read_cache.py) in requests that change nothing.
        self._streams = VersionedCache((DATASETS,), data=True)
        self._pages = VersionedCache((ACCESS, DATASETS), data=True)  # visibility is a matter of grants
        self._executions = VersionedCache((DATASETS, EXECUTIONS), data=True)

    # --- streams --------------------------------------------------------------------------------

    def create_stream(self, *, dataset_id: str, update_method: UpdateMethod) -> Stream:
        now = utcnow()
        with self.engine.begin() as db:
            stream_id = db.execute(
                t.streams.insert().values(
                    dataset_id=dataset_id, update_method=update_method.value, created_at=now, modified_at=now
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return Stream(stream_id, dataset_id, update_method, now, now)

    def get_stream(self, stream_id: int) -> Stream:
        return self._streams.get(stream_id, lambda: self._read_stream(stream_id))

    def _read_stream(self, stream_id: int) -> Stream:
        with self.engine.connect() as db:
            row = db.execute(sa.select(t.streams).where(t.streams.c.id == stream_id)).first()
        if row is None:
            raise NotFound(f"stream {stream_id} does not exist")
        return _stream(row)

    def list_streams(
        self,
        *,
        limit: int,
        offset: int,
        dataset_id: str | None = None,
        dataset_name: str | None = None,
        owner_id: int | None = None,
        visible_to: int | None = None,
        sort: str | None = None,
    ) -> list[Stream]:
        """Live streams (never tombstones), optionally filtered; ``visible_to`` keeps those whose
        dataset that user can see."""
        key = (limit, offset, dataset_id, dataset_name, owner_id, visible_to, sort)
        return list(self._pages.get(key, lambda: self._read_streams(*key)))

    def _read_streams(
        self,
        limit: int,
        offset: int,
        dataset_id: str | None,
        dataset_name: str | None,
        owner_id: int | None,
        visible_to: int | None,
        sort: str | None,
    ) -> tuple[Stream, ...]:
        # The join leaves tombstones out: their dataset row is gone.
        query = sa.select(t.streams).join(t.datasets, t.datasets.c.id == t.streams.c.dataset_id)
        if dataset_id is not None:
            query = query.where(t.streams.c.dataset_id == dataset_id)
        if dataset_name is not None:
            query = query.where(t.datasets.c.name == dataset_name)
        if owner_id is not None:
            query = query.where(t.datasets.c.owner_id == owner_id)
        if visible_to is not None:
            query = query.where(visible_datasets(visible_to))
        order = _stream_order(sort)
        query = query.order_by(*order, t.streams.c.id).limit(limit).offset(offset)
        with self.engine.connect() as db:
            return tuple(_stream(row) for row in db.execute(query))

    def update_stream(self, stream_id: int, *, update_method: UpdateMethod) -> Stream:
        with self.engine.begin() as db:
            db.execute(
                t.streams.update()
                .where(t.streams.c.id == stream_id)
                .values(update_method=update_method.value, modified_at=utcnow())
            )
        return self.get_stream(stream_id)

    def delete_dataset_keeping_streams(self, dataset_id: str) -> list[int]:
        """Delete the dataset row and keep its streams as tombstones, in one transaction.

        Each stream keeps the dataset's name, description and owner as of now; its unfinished
        executions end (ACTIVE ones ABORTED, a COMMITTING one ERROR, so nothing resumes it). Returns
        the ids of the executions it ended, whose staged files the caller removes."""
        now = utcnow()
        reason = f"dataset {dataset_id} was deleted"
        with self.engine.begin() as db:
            dataset = db.execute(
                sa.select(t.datasets.c.name, t.datasets.c.description, t.datasets.c.owner_id).where(
                    t.datasets.c.id == dataset_id
                )
            ).first()
            if dataset is None:
                raise NotFound(f"dataset {dataset_id} does not exist")
            db.execute(
                t.streams.update()
                .where(t.streams.c.dataset_id == dataset_id)
                .values(
                    dataset_name=dataset.name,
                    dataset_description=dataset.description,
                    dataset_owner_id=dataset.owner_id,
                    dataset_deleted_at=now,
                    modified_at=now,
                )
            )
            streams = sa.select(t.streams.c.id).where(t.streams.c.dataset_id == dataset_id)
            ended: list[int] = []
            for state, to in (
                (ExecutionState.ACTIVE, ExecutionState.ABORTED),
                (ExecutionState.COMMITTING, ExecutionState.ERROR),
            ):
                ids = list(
                    db.execute(
                        sa.select(t.executions.c.id).where(
                            t.executions.c.stream_id.in_(streams), t.executions.c.state == state.value
                        )
                    ).scalars()
                )
                if ids:
                    db.execute(
                        t.executions.update()
                        .where(t.executions.c.id.in_(ids), t.executions.c.state == state.value)
                        .values(state=to.value, modified_at=now, ended_at=now, error=reason)
                    )
                ended.extend(ids)
            db.execute(t.datasets.delete().where(t.datasets.c.id == dataset_id))
        return ended

    def delete_stream(self, stream_id: int) -> list[Part]:
        """Delete the stream with its executions; returns their parts so staged files can go."""
        with self.engine.begin() as db:
            staged = db.execute(
                sa.select(t.parts)
                .join(t.executions, t.executions.c.id == t.parts.c.execution_id)
                .where(t.executions.c.stream_id == stream_id)
            ).all()
            execution_ids = sa.select(t.executions.c.id).where(t.executions.c.stream_id == stream_id)
            db.execute(t.parts.delete().where(t.parts.c.execution_id.in_(execution_ids)))
            db.execute(t.executions.delete().where(t.executions.c.stream_id == stream_id))
            db.execute(t.streams.delete().where(t.streams.c.id == stream_id))
        return [_part(row) for row in staged]

    # --- executions -----------------------------------------------------------------------------

    def create_execution(self, *, stream_id: int, update_method: UpdateMethod) -> tuple[Execution, list[int]]:
        """A new ACTIVE execution; every other ACTIVE one of the stream is aborted in the same
        transaction (Domo: one active execution per stream). Returns it and the aborted ids."""
        now = utcnow()
        with self.engine.begin() as db:
            active = (
                db.execute(
                    sa.select(t.executions.c.id).where(
                        t.executions.c.stream_id == stream_id,
                        t.executions.c.state == ExecutionState.ACTIVE.value,
                    )
                )
                .scalars()
                .all()
            )
            if active:
                db.execute(
                    t.executions.update()
                    .where(t.executions.c.id.in_(active), t.executions.c.state == ExecutionState.ACTIVE.value)
                    .values(
                        state=ExecutionState.ABORTED.value,
                        modified_at=now,
                        ended_at=now,
                        error="superseded by a new execution",
                    )
                )
            execution_id = db.execute(
                t.executions.insert().values(
                    stream_id=stream_id,
                    state=ExecutionState.ACTIVE.value,
                    update_method=update_method.value,
                    created_at=now,
                    modified_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return self.get_execution(stream_id, execution_id), list(active)

    def get_execution(self, stream_id: int, execution_id: int) -> Execution:
        return self._executions.get(
            (stream_id, execution_id), lambda: self._read_execution(stream_id, execution_id)
        )

    def _read_execution(self, stream_id: int, execution_id: int) -> Execution:
        with self.engine.connect() as db:
            row = db.execute(
                sa.select(t.executions).where(
                    t.executions.c.id == execution_id, t.executions.c.stream_id == stream_id
                )
            ).first()
        if row is None:
            raise NotFound(f"execution {execution_id} of stream {stream_id} does not exist")
        return _execution(row)

    def list_executions(
        self, stream_id: int, *, limit: int, offset: int, newest_first: bool = False
    ) -> list[Execution]:
        query = (
            sa.select(t.executions)
            .where(t.executions.c.stream_id == stream_id)
            .order_by(t.executions.c.id.desc() if newest_first else t.executions.c.id)
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as db:
            return [_execution(row) for row in db.execute(query)]

    def active_execution_ids(self, stream_id: int) -> list[int]:
        with self.engine.connect() as db:
            return list(
                db.execute(
                    sa.select(t.executions.c.id).where(
                        t.executions.c.stream_id == stream_id,
                        t.executions.c.state == ExecutionState.ACTIVE.value,
                    )
                ).scalars()
            )

    def transition(
        self, execution_id: int, *, from_states: tuple[ExecutionState, ...], to: ExecutionState, **values: Any
    ) -> bool:
        """Move the execution to ``to`` iff it is in one of ``from_states``; True if this call did it."""
        now = utcnow()
        changes: dict[str, Any] = {"state": to.value, "modified_at": now, **values}
        if to in (ExecutionState.SUCCESS, ExecutionState.ERROR, ExecutionState.ABORTED):
            changes["ended_at"] = now
        with self.engine.begin() as db:
            result = db.execute(
                t.executions.update()
                .where(
                    t.executions.c.id == execution_id,
                    t.executions.c.state.in_([s.value for s in from_states]),
                )
                .values(**changes)
            )
        return result.rowcount == 1

    def execution_state(self, execution_id: int) -> ExecutionState | None:
        with self.engine.connect() as db:
            state = db.execute(
                sa.select(t.executions.c.state).where(t.executions.c.id == execution_id)
            ).scalar()
        return None if state is None else ExecutionState(state)

    def idle_executions(
        self, *, older_than: datetime, state: ExecutionState = ExecutionState.ACTIVE
    ) -> list[Execution]:
        """Executions in ``state`` not changed since ``older_than``."""
        query = sa.select(t.executions).where(
            t.executions.c.state == state.value, t.executions.c.modified_at < older_than
        )
        with self.engine.connect() as db:
            return [_execution(row) for row in db.execute(query)]

    # --- parts ----------------------------------------------------------------------------------

    def record_part(self, part: Part) -> Part | None:
        """Store ``part`` (replacing an earlier upload of the same number) iff the execution is still
        ACTIVE, in one transaction. Returns the replaced part, whose file the caller deletes."""
        now = utcnow()
        for attempt in range(3):
            try:
                with self.engine.begin() as db:
                    touched = db.execute(
                        t.executions.update()
                        .where(
                            t.executions.c.id == part.execution_id,
                            t.executions.c.state == ExecutionState.ACTIVE.value,
                        )
                        .values(modified_at=now)
                    )
                    if touched.rowcount != 1:
                        raise Conflict(
                            f"execution {part.execution_id} is not active; parts can no longer be uploaded"
                        )
                    key = (t.parts.c.execution_id == part.execution_id) & (t.parts.c.part == part.part)
                    previous = db.execute(sa.select(t.parts).where(key)).first()
                    db.execute(t.parts.delete().where(key))
                    db.execute(
                        t.parts.insert().values(
                            execution_id=part.execution_id,
                            part=part.part,
                            state=part.state.value,
                            path=part.path,
                            rows=part.rows,
                            bytes=part.bytes,
                            checksum=part.checksum,
                            error=part.error,
                            uploaded_at=now,
                        )
                    )
                return None if previous is None else _part(previous)
            except sa.exc.IntegrityError:
                # Two uploads of the same part raced; the other one won the insert. Go again: last wins.
                if attempt == 2:
                    raise
        return None

    def parts(self, execution_id: int) -> list[Part]:
        query = sa.select(t.parts).where(t.parts.c.execution_id == execution_id).order_by(t.parts.c.part)
        with self.engine.connect() as db:
            return [_part(row) for row in db.execute(query)]

    def forget_parts(self, execution_id: int) -> None:
        with self.engine.begin() as db:
            db.execute(t.parts.delete().where(t.parts.c.execution_id == execution_id))


_STREAM_SORTS = {
    "id": t.streams.c.id,
    "createdat": t.streams.c.created_at,
    "modifiedat": t.streams.c.modified_at,
    "name": t.datasets.c.name,
    "updatemethod": t.streams.c.update_method,
}


def _stream_order(sort: str | None) -> list[Any]:
    if not sort:
        return []
    column = _STREAM_SORTS.get(sort.lstrip("-+").replace("dataSet.", "").lower())
    if column is None:
        return []
    return [column.desc() if sort.startswith("-") else column.asc()]


def _stream(row: Any) -> Stream:
    deleted = None
    if row.dataset_deleted_at is not None:
        deleted = DeletedDataset(
            name=row.dataset_name,
            description=row.dataset_description,
            owner_id=row.dataset_owner_id,
            deleted_at=_aware(row.dataset_deleted_at),
        )
    return Stream(
        row.id,
        row.dataset_id,
        UpdateMethod(row.update_method),
        _aware(row.created_at),
        _aware(row.modified_at),
        deleted,
        _connector(row),
    )


def _connector(row: Any) -> ConnectorSettings | None:
    if row.provider_key is None:
        return None
    return ConnectorSettings(
        provider_key=row.provider_key,
        transport=json.loads(row.transport or "{}"),
        configuration=tuple(ConfigEntry(**item) for item in json.loads(row.configuration or "[]")),
        account_id=row.account_id,
        run_as_id=row.run_as_id,
        schedule=row.schedule or MANUAL_SCHEDULE,
        next_run_at=_aware(row.next_run_at),
    )


def _execution(row: Any) -> Execution:
    return Execution(
        id=row.id,
        stream_id=row.stream_id,
        state=ExecutionState(row.state),
        update_method=UpdateMethod(row.update_method),
        created_at=_aware(row.created_at),
        modified_at=_aware(row.modified_at),
        ended_at=_aware(row.ended_at),
        commit_key=row.commit_key,
        rows=row.rows,
        bytes=row.bytes,
        error=row.error,
        run_type=RunType(row.run_type),
        started_by=row.started_by,
        connector_run=bool(row.connector_run),
        retry_count=row.retry_count,
        scheduled_for=_aware(row.scheduled_for),
        error_category=row.error_category,
        error_code=row.error_code,
    )


def _part(row: Any) -> Part:
    return Part(
        row.execution_id,
        row.part,
        PartState(row.state),
        row.path,
        row.rows,
        row.bytes,
        row.checksum,
        row.error,
    )
