"""The one-row append's durable buffer (per-dataset row numbering, the buffered batches) and the
per-dataset commit claim.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dg_append_state",
        sa.Column(
            "dataset_id", sa.String(36), sa.ForeignKey("dg_datasets.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("folded_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("commit_owner", sa.String(128), nullable=True),
        sa.Column("commit_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "dg_append_batches",
        sa.Column(
            "dataset_id", sa.String(36), sa.ForeignKey("dg_datasets.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("last_seq", sa.BigInteger, primary_key=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("schema_json", sa.Text, nullable=False),
        sa.Column("csv", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute("INSERT INTO dg_append_state (dataset_id) SELECT id FROM dg_datasets")


def downgrade() -> None:
    op.drop_table("dg_append_batches")
    op.drop_table("dg_append_state")
