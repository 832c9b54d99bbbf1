"""Table definitions of the catalog. Migrations create them; the repository reads and writes them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

users = sa.Table(
    "dg_users",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # An Argon2 hash (services/passwords.py); NULL: the user cannot sign in with a password.
    sa.Column("password_hash", sa.String(255), nullable=True),
)

oauth_clients = sa.Table(
    "dg_oauth_clients",
    metadata,
    sa.Column("client_id", sa.String(128), primary_key=True),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("dg_users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("scopes", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

access_tokens = sa.Table(
    "dg_access_tokens",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("dg_users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

server_keys = sa.Table(
    "dg_server_keys",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)

# One counter per topic (catalog/versions.py): a write to a topic's tables bumps it in the same
# transaction, so cached reads are checked against it with one small read per request.
catalog_version = sa.Table(
    "dg_catalog_version",
    metadata,
    sa.Column("topic", sa.String(32), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)

datasets = sa.Table(
    "dg_datasets",
    metadata,
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
    sa.Index("ix_dg_datasets_owner", "owner_id"),
)

streams = sa.Table(
    "dg_streams",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    # No foreign key: a stream outlives its dataset as a tombstone (migration 0004).
    sa.Column("dataset_id", sa.String(36), nullable=False),
    sa.Column("update_method", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
    # What the tombstone shows of its deleted dataset; all NULL while the dataset exists.
    sa.Column("dataset_name", sa.String(1024), nullable=True),
    sa.Column("dataset_description", sa.Text, nullable=True),
    sa.Column("dataset_owner_id", sa.BigInteger, nullable=True),
    sa.Column("dataset_deleted_at", sa.DateTime(timezone=True), nullable=True),
    # A connector stream's settings (migration 0006); provider_key NULL: a push (API) stream.
    sa.Column("provider_key", sa.String(128), nullable=True),
    sa.Column("transport", sa.Text, nullable=True),
    sa.Column("account_id", sa.BigInteger, nullable=True),
    sa.Column("configuration", sa.Text, nullable=True),
    sa.Column("run_as_id", sa.BigInteger, nullable=True),
    sa.Column("schedule", sa.Text, nullable=True),
    sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
)

executions = sa.Table(
    "dg_executions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("stream_id", sa.BigInteger, sa.ForeignKey("dg_streams.id", ondelete="CASCADE"), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("update_method", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    # Set when a commit starts; the Iceberg snapshot carries it, so a retried commit can tell
    # whether the first attempt already landed (exactly-once commits across crashes).
    sa.Column("commit_key", sa.String(64), nullable=True),
    sa.Column("rows", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=True),
    # Connector runs (migration 0006).
    sa.Column("run_type", sa.String(16), nullable=False, server_default="MANUAL"),
    sa.Column("started_by", sa.BigInteger, nullable=True),
    sa.Column("connector_run", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("runner", sa.String(128), nullable=True),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
    sa.Column("retry_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("retry_of", sa.BigInteger, nullable=True),
    sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
    sa.Column("error_category", sa.String(32), nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("connector_state", sa.Text, nullable=True),
    # One connector run in progress per stream, however many nodes queue one at once (migration 0009).
    sa.Index(
        "ux_dg_executions_one_running_run",
        "stream_id",
        unique=True,
        postgresql_where=sa.text("connector_run AND state IN ('ACTIVE', 'COMMITTING')"),
        sqlite_where=sa.text("connector_run AND state IN ('ACTIVE', 'COMMITTING')"),
    ),
)

parts = sa.Table(
    "dg_parts",
    metadata,
    sa.Column(
        "execution_id", sa.BigInteger, sa.ForeignKey("dg_executions.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("part", sa.BigInteger, primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),  # READY or FAILED
    sa.Column("path", sa.Text, nullable=True),  # the staged Parquet file of a READY part
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("checksum", sa.String(64), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
)

groups = sa.Table(
    "dg_groups",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("is_default", sa.Boolean, nullable=False),
    sa.Column("creator_id", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

group_members = sa.Table(
    "dg_group_members",
    metadata,
    sa.Column("group_id", sa.BigInteger, sa.ForeignKey("dg_groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("dg_users.id", ondelete="CASCADE"), primary_key=True),
)

dataset_permissions = sa.Table(
    "dg_dataset_permissions",
    metadata,
    sa.Column(
        "dataset_id", sa.String(36), sa.ForeignKey("dg_datasets.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("principal_type", sa.String(8), primary_key=True),  # USER or GROUP
    sa.Column("principal_id", sa.BigInteger, primary_key=True),
    sa.Column(
        "access_level", sa.String(16), nullable=False
    ),  # OWNER, CO_OWNER, CAN_SHARE, CAN_EDIT, CAN_VIEW
    sa.Column("granted_by", sa.BigInteger, nullable=True),
    sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
)

policies = sa.Table(
    "dg_policies",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
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
)

audit = sa.Table(
    "dg_audit",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
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
)

# The one-row append's durable buffer (services/appends.py). Rows are numbered per dataset in the
# order they are acknowledged (``last_seq`` counts them); each group commit stores one batch per
# dataset. Every Iceberg snapshot records the number of the last row it holds (its watermark), so a
# batch is in the table exactly when its ``last_seq`` is at most the watermark of the snapshot read.
append_state = sa.Table(
    "dg_append_state",
    metadata,
    sa.Column(
        "dataset_id", sa.String(36), sa.ForeignKey("dg_datasets.id", ondelete="CASCADE"), primary_key=True
    ),
    # Rows acknowledged so far. The UPDATE that raises it locks the row, so on every catalog the
    # order in which batches commit is the order of their numbers: no gap can appear behind a fold.
    sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"),
    # The watermark of the snapshot whose total ``dg_datasets.row_count`` holds; rows after it are
    # still buffered, which is how a dataset's row count includes them without reading the table.
    sa.Column("folded_seq", sa.BigInteger, nullable=False, server_default="0"),
    # Who is committing to the dataset's table, and until when the claim holds (a crashed node's
    # claim runs out): folds, REPLACEs, imports and schema changes take turns, so none of them can
    # decide on a table state that another changes under it (DatasetService.commit_claim).
    sa.Column("commit_owner", sa.String(128), nullable=True),
    sa.Column("commit_until", sa.DateTime(timezone=True), nullable=True),
)

append_batches = sa.Table(
    "dg_append_batches",
    metadata,
    sa.Column(
        "dataset_id", sa.String(36), sa.ForeignKey("dg_datasets.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("last_seq", sa.BigInteger, primary_key=True),  # the batch holds rows last_seq-rows+1..last_seq
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("schema_json", sa.Text, nullable=False),  # the columns the rows were checked against
    sa.Column("csv", sa.Text, nullable=False),  # canonical CSV lines (tables/csv_record.py)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

accounts = sa.Table(
    "dg_accounts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("owner_id", sa.BigInteger, sa.ForeignKey("dg_users.id"), nullable=False),
    sa.Column("valid", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("credentials", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
)

account_grants = sa.Table(
    "dg_account_grants",
    metadata,
    sa.Column(
        "account_id", sa.BigInteger, sa.ForeignKey("dg_accounts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("principal_type", sa.String(8), primary_key=True),
    sa.Column("principal_id", sa.BigInteger, primary_key=True),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
)

schedule_occurrences = sa.Table(
    "dg_schedule_occurrences",
    metadata,
    sa.Column("stream_id", sa.BigInteger, primary_key=True),
    sa.Column("due_at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("execution_id", sa.BigInteger, nullable=True),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("claimed_by", sa.String(128), nullable=False),
)

# Table maintenance (services/maintenance.py). A file that expired snapshots referenced is recorded
# here before they are removed from the metadata, and deleted only once ``expired_at`` is older than
# the grace period: a query or export that resolved one of those snapshots earlier may still read it.
expired_files = sa.Table(
    "dg_expired_files",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.String(36), nullable=False),
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("expired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_dg_expired_files_dataset", "dataset_id", "expired_at"),
)

# When each dataset was last maintained: the background loop of every node claims a dataset's round
# with one conditional UPDATE (or the INSERT on the primary key), so one node per interval does it.
maintenance_runs = sa.Table(
    "dg_maintenance_runs",
    metadata,
    sa.Column("dataset_id", sa.String(36), primary_key=True),
    sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_run_by", sa.String(128), nullable=False),
)

# Web sign-in (services/web_sessions.py). A session row is found by the SHA-256 digest of the cookie's
# value; ``expires_at`` is the absolute end, ``last_seen_at`` measures idleness. ``credential`` says
# how the user signed in (``password`` or ``token:<id>``).
web_sessions = sa.Table(
    "dg_web_sessions",
    metadata,
    sa.Column("id_digest", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("dg_users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("credential", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source_address", sa.String(64), nullable=True),
    sa.Index("ix_dg_web_sessions_user", "user_id"),
)

# Failed web sign-ins, counted per (lower-cased) email and per source address within a window.
sign_in_failures = sa.Table(
    "dg_sign_in_failures",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("source_address", sa.String(64), nullable=False),
    sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_dg_sign_in_failures_email", "email", "failed_at"),
    sa.Index("ix_dg_sign_in_failures_address", "source_address", "failed_at"),
)
