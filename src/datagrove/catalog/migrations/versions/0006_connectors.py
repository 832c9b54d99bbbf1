"""Connector streams: accounts (sealed credentials) and their grants, a stream's connector settings,
schedule and state, connector runs on executions, and the claimed schedule occurrences.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "dg_accounts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("owner_id", sa.BigInteger, sa.ForeignKey("dg_users.id"), nullable=False),
        sa.Column("valid", sa.Boolean, nullable=False, server_default=sa.true()),
        # JSON of the credentials, sealed by crypto.SecretBox; NULL when there are none.
        sa.Column("credentials", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dg_account_grants",
        sa.Column(
            "account_id", sa.BigInteger, sa.ForeignKey("dg_accounts.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("principal_type", sa.String(8), primary_key=True),
        sa.Column("principal_id", sa.BigInteger, primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("dg_streams") as streams:
        # NULL: a push (API) stream. Else the connector's dataProvider key.
        streams.add_column(sa.Column("provider_key", sa.String(128), nullable=True))
        streams.add_column(sa.Column("transport", sa.Text, nullable=True))
        streams.add_column(sa.Column("account_id", sa.BigInteger, nullable=True))
        # JSON list of configuration items; the values of secret items are sealed.
        streams.add_column(sa.Column("configuration", sa.Text, nullable=True))
        # The user the connector runs as (who configured it): account use and dataset-sql are theirs.
        streams.add_column(sa.Column("run_as_id", sa.BigInteger, nullable=True))
        streams.add_column(sa.Column("schedule", sa.Text, nullable=True))
        streams.add_column(sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_dg_streams_next_run_at", "dg_streams", ["next_run_at"])
    with op.batch_alter_table("dg_executions") as executions:
        executions.add_column(sa.Column("run_type", sa.String(16), nullable=False, server_default="MANUAL"))
        executions.add_column(sa.Column("started_by", sa.BigInteger, nullable=True))
        # A connector run: queued while ACTIVE without a runner, then claimed by one server process.
        executions.add_column(
            sa.Column("connector_run", sa.Boolean, nullable=False, server_default=sa.false())
        )
        executions.add_column(sa.Column("runner", sa.String(128), nullable=True))
        executions.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        executions.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        executions.add_column(sa.Column("retry_count", sa.Integer, nullable=False, server_default="0"))
        executions.add_column(sa.Column("retry_of", sa.BigInteger, nullable=True))
        executions.add_column(sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True))
        executions.add_column(sa.Column("error_category", sa.String(32), nullable=True))
        executions.add_column(sa.Column("error_code", sa.String(64), nullable=True))
        # JSON the connector left for the next run; in force once this execution is SUCCESS, so the
        # state and the rows it describes land together (a crash between them re-reads nothing twice).
        executions.add_column(sa.Column("connector_state", sa.Text, nullable=True))
    op.create_index("ix_dg_executions_queue", "dg_executions", ["connector_run", "state", "runner"])
    op.create_table(
        "dg_schedule_occurrences",
        sa.Column("stream_id", sa.BigInteger, primary_key=True),
        # The primary key is what makes an occurrence start exactly once across nodes: the node
        # whose INSERT lands starts the run; every other node's INSERT fails.
        sa.Column("due_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("execution_id", sa.BigInteger, nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dg_schedule_occurrences")
    op.drop_index("ix_dg_executions_queue", "dg_executions")
    with op.batch_alter_table("dg_executions") as executions:
        for name in (
            "run_type",
            "started_by",
            "connector_run",
            "runner",
            "heartbeat_at",
            "not_before",
            "retry_count",
            "retry_of",
            "scheduled_for",
            "error_category",
            "error_code",
            "connector_state",
        ):
            executions.drop_column(name)
    op.drop_index("ix_dg_streams_next_run_at", "dg_streams")
    with op.batch_alter_table("dg_streams") as streams:
        for name in (
            "provider_key",
            "transport",
            "account_id",
            "configuration",
            "run_as_id",
            "schedule",
            "next_run_at",
        ):
            streams.drop_column(name)
    op.drop_table("dg_account_grants")
    op.drop_table("dg_accounts")
