"""``AppendCatalog``: the durable buffer of one-row appends, and who folds it into the table.

A group commit (``store_batches``) numbers the rows of each dataset in one transaction with the
activity log entries that describe them; a fold reads what is buffered after a table's watermark
(``pending``) and, once its snapshot has landed, forgets the batches it holds (``record_snapshot``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.catalog.repository import _aware, utcnow


@dataclass(frozen=True)
class NewBatch:
    """Rows of one dataset to buffer: canonical CSV lines checked against ``schema_json``."""

    dataset_id: str
    rows: int
    schema_json: str
    csv: str


@dataclass(frozen=True)
class BufferedBatch:
    dataset_id: str
    last_seq: int  # the batch holds rows last_seq - rows + 1 .. last_seq
    rows: int
    schema_json: str
    csv: str
    created_at: datetime


@dataclass(frozen=True)
class AuditRow:
    """An activity log entry written in the same transaction as the rows it describes."""

    actor_id: int
    actor_name: str
    action: str
    object_type: str
    object_id: str
    object_name: str
    detail: str


class AppendCatalog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def store_batches(self, batches: Sequence[NewBatch], audit: Sequence[AuditRow]) -> dict[str, int]:
        """Buffer ``batches`` (one per dataset) and write ``audit``, all in one transaction; returns
        each dataset's new ``last_seq``. Raises ``KeyError`` naming a dataset that no longer exists
        (nothing is stored)."""
        now = utcnow()
        numbers: list[int] = []
        # Rows are locked in dataset order, so two nodes' group commits cannot deadlock on PostgreSQL.
        batches = sorted(batches, key=lambda batch: batch.dataset_id)
        with self.engine.begin() as db:
            for batch in batches:
                # The UPDATE takes the row's lock until commit: batches of one dataset commit in
                # the order of their numbers, on SQLite and PostgreSQL alike.
                last_seq = db.execute(_ADVANCE, {"dataset": batch.dataset_id, "rows": batch.rows}).scalar()
                if last_seq is None:
                    raise KeyError(batch.dataset_id)
                numbers.append(int(last_seq))
            db.execute(
                _INSERT_BATCH,
                [
                    {
                        "dataset_id": batch.dataset_id,
                        "last_seq": last_seq,
                        "rows": batch.rows,
                        "schema_json": batch.schema_json,
                        "csv": batch.csv,
                        "created_at": now,
                    }
                    for batch, last_seq in zip(batches, numbers, strict=True)
                ],
            )
            if audit:
                db.execute(
                    _INSERT_AUDIT, [{**entry.__dict__, "time": now, "outcome": "success"} for entry in audit]
                )
        return {batch.dataset_id: last_seq for batch, last_seq in zip(batches, numbers, strict=True)}

    def last_seq(self, dataset_id: str) -> int:
        """The number of the last acknowledged row of the dataset (0 if none)."""
        with self.engine.connect() as db:
            value = db.execute(
                sa.select(t.append_state.c.last_seq).where(t.append_state.c.dataset_id == dataset_id)
            ).scalar()
        return int(value or 0)

    def pending(self, dataset_id: str) -> list[BufferedBatch]:
        """Batches not yet known to be in the table, oldest first. The catalog's ``folded_seq``
        never runs ahead of the table's watermark, so this is a superset of what the current
        snapshot lacks; the caller keeps those after the watermark of the snapshot it reads."""
        b, s = t.append_batches, t.append_state
        query = (
            sa.select(b)
            .join(s, s.c.dataset_id == b.c.dataset_id)
            .where(b.c.dataset_id == dataset_id, b.c.last_seq > s.c.folded_seq)
            .order_by(b.c.last_seq)
        )
        with self.engine.connect() as db:
            return [_batch(row) for row in db.execute(query)]

    def unfolded(self) -> tuple[int, datetime | None]:
        """Rows buffered and not yet folded, over every dataset, and when the oldest was buffered."""
        b, s = t.append_batches, t.append_state
        rows = sa.select(sa.func.coalesce(sa.func.sum(s.c.last_seq - s.c.folded_seq), 0))
        oldest = (
            sa.select(sa.func.min(b.c.created_at))
            .join(s, s.c.dataset_id == b.c.dataset_id)
            .where(b.c.last_seq > s.c.folded_seq)
        )
        with self.engine.connect() as db:
            count = db.execute(rows).scalar_one()
            first = db.execute(oldest).scalar_one()
        return int(count), None if first is None else _aware(first)

    def due_for_fold(self, *, rows: int, size: int, older_than: datetime) -> list[str]:
        """Datasets whose buffer holds at least ``rows`` rows or ``size`` bytes of CSV, or a batch
        buffered before ``older_than``."""
        b, s = t.append_batches, t.append_state
        query = (
            sa.select(b.c.dataset_id)
            .join(s, s.c.dataset_id == b.c.dataset_id)
            .where(b.c.last_seq > s.c.folded_seq)
            .group_by(b.c.dataset_id)
            .having(
                sa.or_(
                    sa.func.sum(b.c.rows) >= rows,
                    sa.func.sum(sa.func.length(b.c.csv)) >= size,
                    sa.func.min(b.c.created_at) <= older_than,
                )
            )
        )
        with self.engine.connect() as db:
            return list(db.execute(query).scalars())

    def claim_commit(self, dataset_id: str, *, owner: str, seconds: float) -> bool:
        """Claim the right to commit to the dataset's table for ``seconds``; False while another
        owner holds an unexpired claim. Raises ``KeyError`` for a dataset that does not exist."""
        now = utcnow()
        s = t.append_state
        with self.engine.begin() as db:
            claimed = db.execute(
                s.update()
                .where(
                    s.c.dataset_id == dataset_id,
                    sa.or_(s.c.commit_owner.is_(None), s.c.commit_until < now),
                )
                .values(commit_owner=owner, commit_until=now + timedelta(seconds=seconds))
            )
            if claimed.rowcount == 1:
                return True
            exists = db.execute(sa.select(s.c.dataset_id).where(s.c.dataset_id == dataset_id)).first()
        if exists is None:
            raise KeyError(dataset_id)
        return False

    def release_commit(self, dataset_id: str, *, owner: str) -> None:
        s = t.append_state
        with self.engine.begin() as db:
            db.execute(
                s.update()
                .where(s.c.dataset_id == dataset_id, s.c.commit_owner == owner)
                .values(commit_owner=None, commit_until=None)
            )

    def release_claims_of(self, owners: Callable[[str], bool]) -> int:
        """Release every claim whose owner ``owners`` names (e.g. those of this host's dead
        processes, at start); returns how many."""
        s = t.append_state
        with self.engine.begin() as db:
            held = list(
                db.execute(sa.select(s.c.commit_owner).where(s.c.commit_owner.is_not(None))).scalars()
            )
            gone = [owner for owner in held if owners(owner)]
            if gone:
                db.execute(
                    s.update().where(s.c.commit_owner.in_(gone)).values(commit_owner=None, commit_until=None)
                )
        return len(gone)

    def record_snapshot(
        self, dataset_id: str, *, total_rows: int, watermark: int, data_updated_at: datetime
    ) -> None:
        """After a commit: the dataset's table now holds ``total_rows`` rows and every buffered row
        up to ``watermark``. Stores both and forgets the batches the table holds, in one transaction."""
        with self.engine.begin() as db:
            db.execute(
                t.datasets.update()
                .where(t.datasets.c.id == dataset_id)
                .values(row_count=total_rows, data_updated_at=data_updated_at, updated_at=utcnow())
            )
            db.execute(
                t.append_state.update()
                .where(t.append_state.c.dataset_id == dataset_id)
                .values(folded_seq=watermark)
            )
            db.execute(
                t.append_batches.delete().where(
                    t.append_batches.c.dataset_id == dataset_id, t.append_batches.c.last_seq <= watermark
                )
            )


# Built once: at thousands of rows a second, building a statement cost as much as running it.
_ADVANCE = (
    t.append_state.update()
    .where(t.append_state.c.dataset_id == sa.bindparam("dataset"))
    .values(last_seq=t.append_state.c.last_seq + sa.bindparam("rows"))
    .returning(t.append_state.c.last_seq)
)
_INSERT_BATCH = t.append_batches.insert()
_INSERT_AUDIT = t.audit.insert()


def _batch(row: Any) -> BufferedBatch:
    return BufferedBatch(
        dataset_id=row.dataset_id,
        last_seq=row.last_seq,
        rows=row.rows,
        schema_json=row.schema_json,
        csv=row.csv,
        created_at=_aware(row.created_at),
    )
