"""machines.specs as JSONB on PostgreSQL (no change on SQLite)

Offer searches read about 25 keys of ``specs`` per candidate row; PostgreSQL's plain ``json``
re-parses the text for every read, which made the default offer search take ~1.2 s at 10k
machines (bench/README.md). ``jsonb`` is stored parsed.

Revision ID: 0004
Revises: 0003
"""

from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("machines", "specs", type_=JSONB(), postgresql_using="specs::jsonb")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        import sqlalchemy as sa

        op.alter_column("machines", "specs", type_=sa.JSON(), postgresql_using="specs::json")
