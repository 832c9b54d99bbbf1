"""A stream outlives its dataset: deleting a dataset leaves its streams as tombstones.

The stream row keeps what Domo still shows of a deleted dataset (its id, name, description, owner
and when it was deleted), and ``dg_streams.dataset_id`` no longer references ``dg_datasets``, so
deleting the dataset no longer cascades its streams (and their executions) away.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# SQLite's foreign keys have no names; batch mode names them by this convention so one can be dropped.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
SQLITE_FK = "fk_dg_streams_dataset_id_dg_datasets"


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    foreign_keys = [
        fk for fk in sa.inspect(bind).get_foreign_keys("dg_streams") if fk["referred_table"] == "dg_datasets"
    ]
    # Recreating the table (SQLite) copies the rows with their ids, but the AUTOINCREMENT high-water
    # mark goes with the old table: keep it, so the id of a stream deleted before never comes back.
    high_water = _sqlite_sequence(bind) if sqlite else None
    with op.batch_alter_table(
        "dg_streams", naming_convention=NAMING, table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        for fk in foreign_keys:
            batch.drop_constraint(fk["name"] or SQLITE_FK, type_="foreignkey")
        batch.add_column(sa.Column("dataset_name", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("dataset_description", sa.Text, nullable=True))
        batch.add_column(sa.Column("dataset_owner_id", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("dataset_deleted_at", sa.DateTime(timezone=True), nullable=True))
    if high_water is not None:
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'dg_streams'"))
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('dg_streams', :seq)"),
            {"seq": max(high_water, _max_stream_id(bind))},
        )


def downgrade() -> None:
    # Tombstones have no dataset to point at; they go, with their executions, before the key returns.
    bind = op.get_bind()
    stale = "SELECT id FROM dg_streams WHERE dataset_id NOT IN (SELECT id FROM dg_datasets)"
    bind.execute(
        sa.text(
            "DELETE FROM dg_parts WHERE execution_id IN "
            f"(SELECT id FROM dg_executions WHERE stream_id IN ({stale}))"
        )
    )
    bind.execute(sa.text(f"DELETE FROM dg_executions WHERE stream_id IN ({stale})"))
    bind.execute(sa.text("DELETE FROM dg_streams WHERE dataset_id NOT IN (SELECT id FROM dg_datasets)"))
    with op.batch_alter_table(
        "dg_streams", naming_convention=NAMING, table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        for column in ("dataset_deleted_at", "dataset_owner_id", "dataset_description", "dataset_name"):
            batch.drop_column(column)
        batch.create_foreign_key(
            SQLITE_FK if bind.dialect.name == "sqlite" else "dg_streams_dataset_id_fkey",
            "dg_datasets",
            ["dataset_id"],
            ["id"],
            ondelete="CASCADE",
        )


def _sqlite_sequence(bind: sa.Connection) -> int | None:
    seq = bind.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'dg_streams'")).scalar()
    return None if seq is None else int(seq)


def _max_stream_id(bind: sa.Connection) -> int:
    return int(bind.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM dg_streams")).scalar() or 0)
