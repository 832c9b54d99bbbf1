"""Sign-in for people: a user's password (an Argon2 hash), web sessions and failed sign-ins.

A session is found by the SHA-256 digest of its cookie value, so the catalog holds nothing a
reader could present as a cookie. Failed sign-ins are counted per email and per source address
within a window (services/web_sessions.py), on every node alike.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.add_column("dg_users", sa.Column("password_hash", sa.String(255), nullable=True))
    op.create_table(
        "dg_web_sessions",
        sa.Column("id_digest", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("dg_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("credential", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_address", sa.String(64), nullable=True),
    )
    op.create_index("ix_dg_web_sessions_user", "dg_web_sessions", ["user_id"])
    op.create_table(
        "dg_sign_in_failures",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("source_address", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dg_sign_in_failures_email", "dg_sign_in_failures", ["email", "failed_at"])
    op.create_index("ix_dg_sign_in_failures_address", "dg_sign_in_failures", ["source_address", "failed_at"])


def downgrade() -> None:
    op.drop_index("ix_dg_sign_in_failures_address", table_name="dg_sign_in_failures")
    op.drop_index("ix_dg_sign_in_failures_email", table_name="dg_sign_in_failures")
    op.drop_table("dg_sign_in_failures")
    op.drop_index("ix_dg_web_sessions_user", table_name="dg_web_sessions")
    op.drop_table("dg_web_sessions")
    with op.batch_alter_table("dg_users") as batch:
        batch.drop_column("password_hash")
