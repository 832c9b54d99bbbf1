"""One connector run in progress per stream, enforced by the database: a partial unique index on
``dg_executions(stream_id)`` over connector runs that are ACTIVE (queued or running) or COMMITTING.

Queueing a run checked for a running one and then inserted; two nodes answering "run now" at the
same moment could both pass the check. With the index the second insert fails and is answered 409
naming the first. Streams that already hold more than one such run keep the oldest; the others are
aborted first, or the index could not be built.

Revision ID: 0009
Revises: 0008
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
# 0008 belongs to another branch of work; the chain is put in order when both are merged.
down_revision = "0008"
branch_labels = None
depends_on = None

INDEX = "ux_dg_executions_one_running_run"
RUNNING = "connector_run AND state IN ('ACTIVE', 'COMMITTING')"


def upgrade() -> None:
    op.get_bind().execute(
        sa.text(
            f"""
            UPDATE dg_executions
            SET state = 'ABORTED', ended_at = :now, modified_at = :now,
                error = 'aborted by the upgrade: another run of the stream was already in progress'
            WHERE {RUNNING}
              AND id > (SELECT MIN(other.id) FROM dg_executions AS other
                        WHERE other.stream_id = dg_executions.stream_id
                          AND other.connector_run AND other.state IN ('ACTIVE', 'COMMITTING'))
            """
        ).bindparams(sa.bindparam("now", datetime.now(UTC), type_=sa.DateTime(timezone=True)))
    )
    op.create_index(
        INDEX,
        "dg_executions",
        ["stream_id"],
        unique=True,
        postgresql_where=sa.text(RUNNING),
        sqlite_where=sa.text(RUNNING),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="dg_executions")
