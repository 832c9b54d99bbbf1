"""Users, OAuth clients, developer tokens, server keys and datasets.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Integer ids are never reused (sqlite_autoincrement on SQLite; sequences on PostgreSQL): the activity
# log and row-level policies name users by id, and a new user must not inherit a deleted one's.
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "dg_users",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "dg_oauth_clients",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("dg_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("scopes", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dg_access_tokens",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("dg_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "dg_server_keys",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
    )
    op.create_table(
        "dg_datasets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("owner_id", sa.BigInteger, sa.ForeignKey("dg_users.id"), nullable=False),
        sa.Column("schema_json", sa.Text, nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("pdp_enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_updated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_dg_datasets_owner", "dg_datasets", ["owner_id"])


def downgrade() -> None:
    for table in ("dg_datasets", "dg_server_keys", "dg_access_tokens", "dg_oauth_clients", "dg_users"):
        op.drop_table(table)
