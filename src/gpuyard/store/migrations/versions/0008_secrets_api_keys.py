"""Account secrets (env vars, encrypted); API keys get a name, a permission document,
key_params and the time they were last used

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gpuyard.store.crypto import EncryptedText

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", EncryptedText(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_secrets_user_id", "secrets", ["user_id"])
    op.create_index("uq_secrets_user_name", "secrets", ["user_id", "name"], unique=True)
    # Plain ADD COLUMN (no batch copy of api_keys: that would cascade-delete console sessions).
    op.add_column("api_keys", sa.Column("name", sa.String(length=200), nullable=True))
    op.add_column("api_keys", sa.Column("permissions", sa.JSON(), nullable=True))
    op.add_column("api_keys", sa.Column("key_params", sa.JSON(), nullable=True))
    op.add_column("api_keys", sa.Column("last_used_at", sa.Float(), nullable=True))


def downgrade() -> None:
    # A restricted key would become a full key under an older release: drop those keys first.
    api_keys = sa.table("api_keys", sa.column("permissions", sa.JSON))
    op.execute(api_keys.delete().where(api_keys.c.permissions.is_not(None)))
    op.drop_column("api_keys", "last_used_at")
    op.drop_column("api_keys", "key_params")
    op.drop_column("api_keys", "permissions")
    op.drop_column("api_keys", "name")
    op.drop_index("uq_secrets_user_name", table_name="secrets")
    op.drop_index("ix_secrets_user_id", table_name="secrets")
    op.drop_table("secrets")
