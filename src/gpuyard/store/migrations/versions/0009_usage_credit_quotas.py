"""usage, credit and quotas: usage intervals, credit entries, user quotas, job leases, and why
gpuyard stopped an instance

Instances and volumes that exist when this runs get an open usage interval from now on (their
past is not charged).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

HOURS_PER_MONTH = 30 * 24


def upgrade() -> None:
    op.add_column("instances", sa.Column("stop_reason", sa.String(length=200), nullable=True))

    op.create_table(
        "usage_intervals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("volume_id", sa.Integer(), nullable=True),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("template_name", sa.String(length=500), nullable=True),
        sa.Column("label", sa.String(length=500), nullable=True),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("gpu_dph", sa.Float(), nullable=False),
        sa.Column("disk_gb", sa.Float(), nullable=False),
        sa.Column("disk_dph", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_usage_intervals_instance_id", "usage_intervals", ["instance_id"])
    op.create_index("ix_usage_intervals_volume_id", "usage_intervals", ["volume_id"])
    op.create_index("ix_usage_intervals_started_at", "usage_intervals", ["started_at"])
    op.create_index("ix_usage_intervals_user_started", "usage_intervals", ["user_id", "started_at"])

    op.create_table(
        "credit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_credit_entries_user_id", "credit_entries", ["user_id"])
    op.create_index("ix_credit_entries_at", "credit_entries", ["at"])

    op.create_table(
        "user_quotas",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("max_gpus", sa.Integer(), nullable=True),
        sa.Column("max_dph", sa.Float(), nullable=True),
        sa.Column("max_volume_gb", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )

    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    # What exists now accrues from now on: one open interval each (disk only: whether an
    # instance runs is recorded by the next change the reconciler makes).
    now = time.time()
    op.execute(sa.text(
        "INSERT INTO usage_intervals (user_id, kind, instance_id, volume_id, machine_id, template_id,"
        " template_name, label, gpus, gpu_dph, disk_gb, disk_dph, started_at, ended_at)"
        " SELECT owner_id, 'instance', id, NULL, machine_id, template_id, template_name, label,"
        " CASE WHEN actual_status = 'running' THEN num_gpus ELSE 0 END,"
        " CASE WHEN actual_status = 'running' THEN"
        "   CASE WHEN is_bid AND bid_price IS NOT NULL THEN bid_price ELSE dph_base END"
        " ELSE 0 END,"
        f" disk_space, storage_cost * disk_space / {HOURS_PER_MONTH}, :now, NULL"
        " FROM instances WHERE destroyed_at IS NULL"
    ).bindparams(now=now))
    op.execute(sa.text(
        "INSERT INTO usage_intervals (user_id, kind, instance_id, volume_id, machine_id, template_id,"
        " template_name, label, gpus, gpu_dph, disk_gb, disk_dph, started_at, ended_at)"
        " SELECT owner_id, 'volume', NULL, id, machine_id, NULL, NULL, name, 0, 0, size,"
        f" storage_cost * size / {HOURS_PER_MONTH}, :now, NULL"
        " FROM volumes WHERE deleted_at IS NULL"
    ).bindparams(now=now))


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("user_quotas")
    op.drop_table("credit_entries")
    op.drop_table("usage_intervals")
    # Plain DROP COLUMN (SQLite 3.35+), as 0006 does.
    op.drop_column("instances", "stop_reason")
