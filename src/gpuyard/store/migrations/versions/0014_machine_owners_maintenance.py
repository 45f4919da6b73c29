"""machine owners, owner-set prices and maintenance windows

Machines get an owner (a user; existing machines go to the first administrator, if any), the
minimum GPUs per offer an owner lists them with, when the owner last set their prices, and the
next maintenance window (copied from ``machine_maintenances``, where every window is kept).

Revision ID: 0014
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("machines") as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("min_chunk", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("prices_set_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("maint_start", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("maint_end", sa.Float(), nullable=True))
        batch_op.create_index("ix_machines_owner_id", ["owner_id"])
        batch_op.create_foreign_key("fk_machines_owner_id_users", "users", ["owner_id"], ["id"])
    with op.batch_alter_table("machines") as batch_op:
        batch_op.alter_column("min_chunk", server_default=None)

    op.create_table(
        "machine_maintenances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.Float(), nullable=False),
        sa.Column("end_time", sa.Float(), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["machine_id"], ["machines.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_machine_maintenances_machine_id", "machine_maintenances", ["machine_id"])

    conn = op.get_bind()
    first_admin = conn.execute(
        sa.text("SELECT id FROM users WHERE is_admin = :yes ORDER BY id LIMIT 1"), {"yes": True}
    ).scalar()
    if first_admin is not None:
        conn.execute(sa.text("UPDATE machines SET owner_id = :owner"), {"owner": first_admin})


def downgrade() -> None:
    op.drop_index("ix_machine_maintenances_machine_id", table_name="machine_maintenances")
    op.drop_table("machine_maintenances")
    with op.batch_alter_table("machines") as batch_op:
        batch_op.drop_constraint("fk_machines_owner_id_users", type_="foreignkey")
        batch_op.drop_index("ix_machines_owner_id")
        batch_op.drop_column("maint_end")
        batch_op.drop_column("maint_start")
        batch_op.drop_column("prices_set_at")
        batch_op.drop_column("min_chunk")
        batch_op.drop_column("owner_id")
