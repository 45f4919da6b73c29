"""SSH keys: account keys and keys attached to one instance; whether an instance runs its own
SSH server (direct SSH)

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("instances", sa.Column("direct_ssh", sa.Boolean(), nullable=False,
                                         server_default=sa.text("false")))
    op.create_table(
        "ssh_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ssh_keys_user_id", "ssh_keys", ["user_id"])
    op.create_index("uq_ssh_keys_user_fingerprint", "ssh_keys", ["user_id", "fingerprint"], unique=True)
    op.create_table(
        "instance_ssh_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_instance_ssh_keys_instance_id", "instance_ssh_keys", ["instance_id"])
    op.create_index("uq_instance_ssh_keys_instance_fingerprint", "instance_ssh_keys",
                    ["instance_id", "fingerprint"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_instance_ssh_keys_instance_fingerprint", table_name="instance_ssh_keys")
    op.drop_index("ix_instance_ssh_keys_instance_id", table_name="instance_ssh_keys")
    op.drop_table("instance_ssh_keys")
    op.drop_index("uq_ssh_keys_user_fingerprint", table_name="ssh_keys")
    op.drop_index("ix_ssh_keys_user_id", table_name="ssh_keys")
    op.drop_table("ssh_keys")
    op.drop_column("instances", "direct_ssh")
