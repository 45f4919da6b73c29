"""cluster: per-instance leases, and each machine's engine as the heartbeats last saw it

Revision ID: 0013
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_leases",
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id"),
    )
    op.add_column("machines", sa.Column("engine_online", sa.Boolean(), nullable=False,
                                        server_default=sa.true()))
    op.add_column("machines", sa.Column("engine_failures", sa.Integer(), nullable=False,
                                        server_default="0"))
    op.add_column("machines", sa.Column("engine_checked_at", sa.Float(), nullable=True))
    op.add_column("machines", sa.Column("engine_error", sa.String(length=500), nullable=True))


def downgrade() -> None:
    for column in ("engine_error", "engine_checked_at", "engine_failures", "engine_online"):
        op.drop_column("machines", column)
    op.drop_table("instance_leases")
