"""security: template versions know whether they were private; API keys can be revoked and
users disabled; console sessions live in the database; the console's signing secret leaves it

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

    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_console_sessions_api_key_id", "console_sessions", ["api_key_id"])
    op.create_index("ix_console_sessions_user_id", "console_sessions", ["user_id"])

    # Cookies are now signed with a key derived from the server secret, which lives outside the
    # database (gpuyard/server_secret.py); the old signing secret must not stay readable here.
    op.execute(server_settings.delete().where(server_settings.c.key == "session_secret"))


def downgrade() -> None:
    # The signing secret is not put back: the old release makes a new one when it finds none.
    # Registry logins stay encrypted: an older release cannot use them (launch those again).
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of ``users`` would cascade-delete its keys.
    op.drop_table("console_sessions")
    op.drop_column("users", "disabled_at")
    op.drop_column("api_keys", "revoked_at")
    op.drop_column("template_versions", "private")
