"""Streams, their executions and the parts uploaded to them.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Integer ids are never reused (sqlite_autoincrement on SQLite; sequences on PostgreSQL): the activity
# log and row-level policies name users by id, and a new user must not inherit a deleted one's.
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "dg_streams",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "dataset_id", sa.String(36), sa.ForeignKey("dg_datasets.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("update_method", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dg_streams_dataset", "dg_streams", ["dataset_id"])
    op.create_table(
        "dg_executions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "stream_id", sa.BigInteger, sa.ForeignKey("dg_streams.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("update_method", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("commit_key", sa.String(64), nullable=True),
        sa.Column("rows", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dg_executions_stream_state", "dg_executions", ["stream_id", "state"])
    op.create_table(
        "dg_parts",
        sa.Column(
            "execution_id",
            sa.BigInteger,
            sa.ForeignKey("dg_executions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("part", sa.BigInteger, primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("path", sa.Text, nullable=True),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("checksum", sa.String(64), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("dg_parts", "dg_executions", "dg_streams"):
        op.drop_table(table)
