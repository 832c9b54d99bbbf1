"""Table maintenance: the files that expired snapshots left (deleted once a grace period has
passed, so no running read loses them) and when each dataset was last maintained (one node per
interval does it).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "dg_expired_files",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        # No foreign key: a dataset's drop removes its files itself, and the rows are then moot.
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        # Recorded before the snapshots that referenced the file are removed from the metadata.
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dg_expired_files_dataset", "dg_expired_files", ["dataset_id", "expired_at"])
    op.create_table(
        "dg_maintenance_runs",
        sa.Column("dataset_id", sa.String(36), primary_key=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_by", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dg_maintenance_runs")
    op.drop_index("ix_dg_expired_files_dataset", table_name="dg_expired_files")
    op.drop_table("dg_expired_files")
