"""drop indexes on true/false template columns; partial index for recommended templates

Without statistics, SQLite treats an equality on any index as selective, so `use_ssh = 1` or
the visibility test `private = 0` made it scan half the table through those indexes instead
of walking ix_templates_count_created or looking a hash up (see bench/README.md).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FLAGS = ("use_ssh", "ssh_direct", "jup_direct", "private", "recommended")


def upgrade() -> None:
    with op.batch_alter_table("templates") as batch_op:
        for column in FLAGS:
            batch_op.drop_index(f"ix_templates_{column}")
    op.create_index(
        "ix_templates_recommended_only",
        "templates",
        ["id"],
        sqlite_where=sa.text("recommended = 1"),
        postgresql_where=sa.text("recommended = true"),
    )


def downgrade() -> None:
    op.drop_index("ix_templates_recommended_only", table_name="templates")
    with op.batch_alter_table("templates") as batch_op:
        for column in FLAGS:
            batch_op.create_index(f"ix_templates_{column}", [column])
