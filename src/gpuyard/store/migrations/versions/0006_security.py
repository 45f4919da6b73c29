"""security: template versions know whether they were private; API keys can be revoked and
users disabled; the console's signing secret leaves the database

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

template_versions = sa.table("template_versions", sa.column("content", sa.JSON),
                             sa.column("private", sa.Boolean))
server_settings = sa.table("server_settings", sa.column("key", sa.String), sa.column("value", sa.Text))


def upgrade() -> None:
    # Other users list only versions that were public when saved: copy each version's
    # content.private into a column (a version without the key counts as private).
    op.add_column("template_versions", sa.Column("private", sa.Boolean(), nullable=True))
    op.execute(template_versions.update().values(
        private=sa.func.coalesce(template_versions.c.content["private"].as_boolean(), sa.true())
    ))
    with op.batch_alter_table("template_versions") as batch:
        batch.alter_column("private", existing_type=sa.Boolean(), nullable=False)

    op.add_column("api_keys", sa.Column("revoked_at", sa.Float(), nullable=True))
    op.add_column("users", sa.Column("disabled_at", sa.Float(), nullable=True))

    # Cookies are now signed with a key derived from the server secret, which lives outside the
    # database (gpuyard/server_secret.py); the old signing secret must not stay readable here.
    op.execute(server_settings.delete().where(server_settings.c.key == "session_secret"))


def downgrade() -> None:
    # The signing secret is not put back: the old release makes a new one when it finds none.
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled_at")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("revoked_at")
    with op.batch_alter_table("template_versions") as batch:
        batch.drop_column("private")
