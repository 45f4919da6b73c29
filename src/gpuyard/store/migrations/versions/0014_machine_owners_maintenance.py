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
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN: a batch rebuild of machines would drop a table that instances reference.
    for name, kind in (("owner_id", sa.Integer()), ("min_chunk", sa.Integer()),
                       ("prices_set_at", sa.Float()), ("maint_start", sa.Float()),
                       ("maint_end", sa.Float())):
        op.add_column("machines", sa.Column(name, kind, nullable=True))
    op.create_index("ix_machines_owner_id", "machines", ["owner_id"])

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
    op.drop_index("ix_machines_owner_id", table_name="machines")
    # Plain DROP COLUMN (SQLite 3.35+), as 0006 does.
    for name in ("maint_end", "maint_start", "prices_set_at", "min_chunk", "owner_id"):
        op.drop_column("machines", name)
