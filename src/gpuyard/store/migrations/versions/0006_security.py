"""security: the console's signing secret leaves the database

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

server_settings = sa.table("server_settings", sa.column("key", sa.String), sa.column("value", sa.Text))


def upgrade() -> None:
    # Cookies are now signed with a key derived from the server secret, which lives outside the
    # database (gpuyard/server_secret.py); the old signing secret must not stay readable here.
    op.execute(server_settings.delete().where(server_settings.c.key == "session_secret"))


def downgrade() -> None:
    pass  # the old release makes a new signing secret when it finds none
