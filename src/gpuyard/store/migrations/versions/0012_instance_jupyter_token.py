"""instances: the Jupyter token of a jupyter-runtype instance, encrypted

Revision ID: 0012
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gpuyard.store.crypto import EncryptedText

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("instances", sa.Column("jupyter_token", EncryptedText(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+), as 0006 does.
    op.drop_column("instances", "jupyter_token")
