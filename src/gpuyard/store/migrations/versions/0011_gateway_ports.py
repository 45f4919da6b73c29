"""SSH gateway: each live instance's gateway port (unique) and the address users reach it at

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("instances", sa.Column("ssh_port", sa.Integer(), nullable=True))
    op.add_column("instances", sa.Column("ssh_host", sa.String(length=255), nullable=True))
    op.create_index("ix_instances_ssh_port", "instances", ["ssh_port"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_instances_ssh_port", table_name="instances")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("ssh_host")
        batch.drop_column("ssh_port")
