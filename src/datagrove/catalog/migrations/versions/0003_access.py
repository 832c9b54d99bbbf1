"""Access control: groups and members, dataset permissions, PDP policies, the activity log.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Integer ids are never reused (sqlite_autoincrement on SQLite; sequences on PostgreSQL): the activity
# log and row-level policies name users by id, and a new user must not inherit a deleted one's.
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "dg_groups",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("creator_id", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "dg_group_members",
        sa.Column(
            "group_id", sa.BigInteger, sa.ForeignKey("dg_groups.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "user_id", sa.BigInteger, sa.ForeignKey("dg_users.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_index("ix_dg_group_members_user", "dg_group_members", ["user_id"])
    op.create_table(
        "dg_dataset_permissions",
        sa.Column(
            "dataset_id", sa.String(36), sa.ForeignKey("dg_datasets.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("principal_type", sa.String(8), primary_key=True),
        sa.Column("principal_id", sa.BigInteger, primary_key=True),
        sa.Column("access_level", sa.String(16), nullable=False),
        sa.Column("granted_by", sa.BigInteger, nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_dg_dataset_permissions_principal", "dg_dataset_permissions", ["principal_type", "principal_id"]
    )
    op.create_table(
        "dg_policies",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "dataset_id", sa.String(36), sa.ForeignKey("dg_datasets.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("filters_json", sa.Text, nullable=False),
        sa.Column("users_json", sa.Text, nullable=False),
        sa.Column("groups_json", sa.Text, nullable=False),
        sa.Column("virtual_users_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dg_policies_dataset", "dg_policies", ["dataset_id"])
    op.create_table(
        "dg_audit",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.BigInteger, nullable=True),
        sa.Column("actor_name", sa.String(255), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=True),
        sa.Column("object_id", sa.String(64), nullable=True),
        sa.Column("object_name", sa.String(1024), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("ip_address", sa.String(64), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dg_audit_time", "dg_audit", ["time"])
    op.create_index("ix_dg_audit_actor", "dg_audit", ["actor_id", "time"])
    # Every dataset created before this migration is owned by its creator.
    op.execute(
        "INSERT INTO dg_dataset_permissions (dataset_id, principal_type, principal_id, access_level, granted_at) "
        "SELECT id, 'USER', owner_id, 'OWNER', created_at FROM dg_datasets"
    )


def downgrade() -> None:
    for table in ("dg_audit", "dg_policies", "dg_dataset_permissions", "dg_group_members", "dg_groups"):
        op.drop_table(table)
