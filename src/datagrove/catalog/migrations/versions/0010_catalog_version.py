"""``dg_catalog_version``: a counter per topic that every write to the topic's tables bumps in its own
transaction (``catalog/versions.py``), so a server can keep reads in memory and know, with one small
read per request, whether they are still current — on every node sharing the catalog.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TOPICS = ("access", "datasets", "executions")


def upgrade() -> None:
    table = op.create_table(
        "dg_catalog_version",
        sa.Column("topic", sa.String(32), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(table, [{"topic": topic, "version": 0} for topic in TOPICS])


def downgrade() -> None:
    op.drop_table("dg_catalog_version")
